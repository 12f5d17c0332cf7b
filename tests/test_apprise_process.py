"""The apprise channel end to end: the real backend sends through apprise's json:// and form:// targets
to a real local receiver, and its secrets reach neither the log file nor the database."""

import uuid
from datetime import datetime, timezone

import pytest

from tests.support.apprise_receiver import receiver  # noqa: F401 (a fixture)
from tests.support.procs import Backend, assert_no_secret_in_any_file, wait_until

PASSWORD = "apprise-PASSWORD-0123456789"
PATH_TOKEN = "path-TOKEN-abcdef987654"  # a Slack/Discord URL's path is its token: it must not leak either
SHOP = "https://shop.example/"


@pytest.fixture
def backend(tmp_path, receiver):
    port = receiver.server_port
    urls = f"json://user:{PASSWORD}@127.0.0.1:{port}/{PATH_TOKEN} form://127.0.0.1:{port}/form/{PATH_TOKEN}"
    server = Backend(tmp_path, FAILURE_THRESHOLD="1", APPRISE_URLS=urls, NOTIFY_RETRIES="1",
                     NOTIFY_BACKOFF_SECONDS="0.1", NOTIFY_TIMEOUT_SECONDS="2").start()
    yield server
    server.stop()


def fail_once(backend: Backend) -> None:
    body = {"target_url": SHOP, "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "is_success": False, "status_code": 503, "response_time_ms": 250, "event_uid": str(uuid.uuid4())}
    answer = backend.api("POST", "/events", json=body)
    assert answer.status_code == 201, answer.text


def apprise_rows(backend: Backend, count: int) -> list[tuple]:
    """Wait for `count` APPRISE notification_logs rows; return them oldest first."""
    sql = ("SELECT notice_type, status, response_code, retry_count, error_message FROM notification_logs "
           "WHERE channel = 'APPRISE' ORDER BY id")
    return wait_until(lambda: len(backend.rows(sql)) >= count and backend.rows(sql), 15, message=f"{count} rows")


def test_an_outage_reaches_every_apprise_url_in_one_sent_attempt(backend, receiver):
    fail_once(backend)
    assert apprise_rows(backend, 1) == [("ERROR", "SENT", None, 0, None)]
    notices = {n["path"]: n["body"] for n in receiver.received()}
    assert notices[f"/{PATH_TOKEN}"]["type"] == "failure"  # json://: apprise's JSON body
    assert "URL: https://shop.example/" in notices[f"/{PATH_TOKEN}"]["message"]
    assert "503 Service Unavailable" in notices[f"/form/{PATH_TOKEN}"]["message"]  # form://: a form body
    assert "APPRISE" in backend.log_text()
    assert_no_secret_in_any_file(backend.log_path.parent, PASSWORD, PATH_TOKEN)


def test_a_receiver_answering_500_gives_failed_rows_retried_without_a_secret(backend, receiver):
    receiver.status = 500
    fail_once(backend)
    rows = apprise_rows(backend, 2)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("ERROR", "FAILED", 500, 0), ("ERROR", "FAILED", 500, 1)]
    assert rows[-1][4].startswith("apprise 2 of 2 target(s) failed: ")
    assert "error=500" in rows[-1][4]
    wait_until(lambda: "FAILED after 2 attempts" in backend.log_text(), 5, message="the giving-up line")
    assert_no_secret_in_any_file(backend.log_path.parent, PASSWORD, PATH_TOKEN)
