"""Two backend instances on one PostgreSQL database, with failure storms at both: one alert per outage."""

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.support.databases import IS_POSTGRES
from tests.support.procs import Backend, wait_until

pytestmark = pytest.mark.skipif(not IS_POSTGRES, reason="needs TEST_POSTGRES_URL (make test-postgres)")


def failure(url: str, moment: datetime) -> dict:
    return {"target_url": url, "timestamp": moment.isoformat(), "is_success": False, "status_code": 503,
            "response_time_ms": 30, "error_message": "HTTP 503 Service Unavailable", "event_uid": str(uuid.uuid4())}


def test_storms_at_two_instances_open_exactly_one_alert_per_outage(tmp_path):
    (tmp_path / "a").mkdir()  # before Backend(), which writes its env file there
    (tmp_path / "b").mkdir()
    first = Backend(tmp_path / "a", FAILURE_THRESHOLD="3")
    second = Backend(tmp_path / "b", FAILURE_THRESHOLD="3", DATABASE_URL=first.env["DATABASE_URL"])
    try:
        first.start()
        second.start()
        urls = [f"https://storm-{n}.example/" for n in range(3)]
        start_at = datetime.now(timezone.utc) - timedelta(minutes=1)
        bodies = [failure(url, start_at + timedelta(milliseconds=7 * i)) for url in urls for i in range(30)]
        gate = threading.Barrier(len(bodies), timeout=30)
        codes: list = []

        def send(index: int) -> None:
            backend = (first, second)[index % 2]  # every target is hit at both instances
            gate.wait()
            codes.append(requests.post(f"{backend.url}/events", json=bodies[index], timeout=60,
                                       headers={"X-API-Key": backend.env["API_KEY"]}).status_code)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=90)
        assert sorted(codes) == [201] * len(bodies)
        assert first.rows("SELECT COUNT(*) FROM events")[0][0] == len(bodies)
        assert sorted(first.rows("SELECT target_url, status FROM alerts")) == [(url, "OPEN") for url in urls]
        # One console delivery per alert, by whichever instance holds the CONSOLE lease.
        wait_until(lambda: first.rows("SELECT COUNT(*) FROM notification_logs")[0][0] == len(urls), 15,
                   message="one console row per alert")
        assert first.rows("SELECT COUNT(*) FROM deliveries WHERE status = 'SENT'")[0][0] == len(urls)
    finally:
        first.stop()
        second.stop()
