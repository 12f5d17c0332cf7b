"""Stats against real backend processes: two on one database roll every event once, a kill -9 included,
and GET /targets/<name>/stats answers from rollups plus the events not rolled yet (SPEC §8)."""

import os
import signal
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from tests.support.procs import Backend, wait_until


def check(url: str, i: int, moment: datetime) -> dict:
    ok = i % 10 != 0
    return {"target_url": url, "timestamp": moment.isoformat(), "is_success": ok, "status_code": 200 if ok else 503,
            "response_time_ms": 30 + i % 50, "error_message": None if ok else "HTTP 503", "event_uid": str(uuid.uuid4())}


def stats(backend: Backend, name: str, window: str = "24h") -> dict:
    response = backend.api("GET", f"/targets/{quote(name, safe='')}/stats?window={window}")
    assert response.status_code == 200, response.text
    return response.json()


def test_two_backends_on_one_database_roll_every_event_once_through_a_kill(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    fast = {"ROLLUP_INTERVAL_SECONDS": "0.1"}
    first = Backend(tmp_path / "a", **fast)
    second = Backend(tmp_path / "b", DATABASE_URL=first.env["DATABASE_URL"], **fast)
    urls = [f"https://roll-{n}.example/" for n in range(4)]
    start = datetime.now(timezone.utc) - timedelta(hours=3)
    sent = 0
    try:
        first.start()
        second.start()
        alive = [first, second]
        for batch in range(30):
            if batch == 15:  # kill -9 the process holding the rollups lease, mid-run
                holder = first.rows("SELECT holder FROM leases WHERE name = 'rollups'")[0][0]
                [rolling] = [b for b in alive if f":{b.proc.pid}:" in holder]
                os.kill(rolling.proc.pid, signal.SIGKILL)
                rolling.proc.wait(timeout=10)
                alive.remove(rolling)
            backend = alive[batch % len(alive)]
            body = [check(urls[i % 4], i, start + timedelta(seconds=5 * (sent + i))) for i in range(40)]
            assert backend.api("POST", "/events", json=body).status_code == 201
            sent += len(body)
        survivor = alive[0]
        last_id = survivor.rows("SELECT MAX(id) FROM events")[0][0]
        wait_until(lambda: survivor.rows("SELECT last_event_id FROM rollup_progress")[0][0] == last_id, 30,
                   message="every event rolled up by the survivor")
        rolled = survivor.rows("SELECT target, SUM(checks), SUM(failures), SUM(response_ms_sum) "
                             "FROM rollups GROUP BY target ORDER BY target")
        raw = survivor.rows("SELECT target_url, COUNT(*), SUM(CASE WHEN status_code >= 400 THEN 1 ELSE 0 END), "
                          "SUM(response_time_ms) FROM events GROUP BY target_url ORDER BY target_url")
        assert [tuple(r) for r in rolled] == [tuple(r) for r in raw]
        assert sum(r[1] for r in rolled) == sent == 1200
        body = stats(survivor, urls[0])
        assert (body["checks"], body["failures"], body["uptime_percent"]) == (300, 60, 80.0)
    finally:
        first.stop()
        second.stop()


def test_a_check_just_posted_shows_in_the_stats_of_a_real_backend(tmp_path):
    backend = Backend(tmp_path, ROLLUP_INTERVAL_SECONDS="3600").start()  # nothing is rolled during the test
    try:
        url = "https://just.example/"
        now = datetime.now(timezone.utc)
        assert backend.api("POST", "/events", json=[check(url, i, now - timedelta(minutes=i)) for i in range(10)]
                           ).status_code == 201
        body = stats(backend, url, "30d")
        assert (body["target"], body["window"], body["checks"], body["failures"]) == (url, "30d", 10, 1)
        assert body["response_time_ms"]["mean"] == 34.5
        assert backend.api("GET", "/targets/nobody/stats").status_code == 404
        bad = backend.api("GET", f"/targets/{quote(url, safe='')}/stats?window=2d")
        assert (bad.status_code, bad.json()["details"]["code"]) == (400, "invalid_request")
    finally:
        backend.stop()
