"""Fault injection at the Telegram channel: a failing, flooding or hanging Bot API, and backend restarts.

The real backend process talks to a fake Bot API on 127.0.0.1 (`TELEGRAM_API_BASE_URL`); the
assertions read the real SQLite file and what the fake received.
"""

import os
import re
import signal
import time
import uuid
from datetime import datetime, timezone

import pytest

from tests.support import figures
from tests.support.procs import Backend, assert_no_secret_in_any_file, wait_until

BOT_TOKEN = "424242:fault-injection-bot-token-SECRET"
OUTAGE_URL = "https://shop.example/"


# -- helpers --------------------------------------------------------------------------------------

class TimedRequests(list):
    """FakeTelegram.requests that also remembers when each request arrived (monotonic seconds)."""

    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def append(self, item) -> None:
        self.times.append(time.monotonic())
        super().append(item)


@pytest.fixture
def backends(tmp_path, telegram):
    """Make backends with Telegram pointed at the fake; every one is stopped by PID at teardown."""
    made: list[Backend] = []

    def make(**env: str) -> Backend:
        settings = {"FAILURE_THRESHOLD": "1", "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_CHAT_ID": "777",
                    "TELEGRAM_API_BASE_URL": telegram.base_url, "NOTIFY_BACKOFF_SECONDS": "0.2",
                    "NOTIFY_TIMEOUT_SECONDS": "1", **env}
        backend = Backend(tmp_path, **settings)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.stop()


def post_outage(backend: Backend) -> tuple[int, float]:
    """POST one failed check (it opens an alert at threshold 1); the alert id and how long the POST took."""
    body = {"target_url": OUTAGE_URL, "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "is_success": False, "status_code": 503, "response_time_ms": 250,
            "error_message": "HTTP 503 Service Unavailable", "event_uid": str(uuid.uuid4())}
    began = time.monotonic()
    answer = backend.api("POST", "/events", json=body)
    took = time.monotonic() - began
    assert answer.status_code == 201, answer.text
    assert answer.json()["alert"] is not None
    return answer.json()["alert"]["id"], took


def telegram_rows(backend: Backend) -> list[tuple]:
    return backend.rows("SELECT status, response_code, retry_count, error_message, message_id "
                        "FROM notification_logs WHERE channel = 'TELEGRAM' ORDER BY id")


def console_rows(backend: Backend) -> list[tuple]:
    return backend.rows("SELECT notice_type, status FROM notification_logs WHERE channel = 'CONSOLE' ORDER BY id")


def send_requests(telegram) -> list[dict]:
    with telegram.lock:
        return [r for r in telegram.requests if r["method"] == "sendMessage"]


def send_times(telegram) -> list[float]:
    """When each sendMessage arrived (the fake's requests must be a TimedRequests)."""
    with telegram.lock:
        return [at for at, r in zip(telegram.requests.times, telegram.requests) if r["method"] == "sendMessage"]


def pending_deliveries(backend: Backend) -> int:
    return backend.rows("SELECT COUNT(*) FROM deliveries WHERE status = 'PENDING'")[0][0]



def record_telegram(scenario: str, telegram, backend: Backend, note: str = "") -> None:
    """sent: sendMessage requests; stored: TELEGRAM log rows; duplicated: extra copies; lost: undelivered."""
    delivered = len(telegram.sent_messages())
    figures.record(scenario, sent=len(send_requests(telegram)), stored=len(telegram_rows(backend)),
                   duplicated=max(0, delivered - 1), lost=0 if delivered else 1, note=note)


# -- a. a Bot API that always answers 500 -------------------------------------------------------

def test_failing_telegram_is_tried_four_times_then_given_up_while_console_still_sends(backends, telegram,
                                                                                       tmp_path):
    telegram.mode = "fail"
    backend = backends().start()
    post_outage(backend)
    wait_until(lambda: len(telegram_rows(backend)) == 4 and pending_deliveries(backend) == 0, 20,
               message="four failed Telegram attempts")
    rows = telegram_rows(backend)
    record_telegram("telegram answers 500", telegram, backend, "gave up after 4 attempts, as designed")
    assert [(r[0], r[1], r[2]) for r in rows] == [("FAILED", 500, n) for n in range(4)]
    assert rows[-1][3] and "500" in rows[-1][3]
    assert len(send_requests(telegram)) == 4 and telegram.sent_messages() == []
    assert re.search(r"\[ERROR\] TELEGRAM ERROR for alert \d+ FAILED after 4 attempts", backend.log_text())
    assert console_rows(backend) == [("ERROR", "SENT")]
    backend.stop()
    assert_no_secret_in_any_file(tmp_path, BOT_TOKEN, backend.env["API_KEY"])


# -- b. flood control ---------------------------------------------------------------------------

def test_flood_control_retry_waits_for_retry_after_then_sends_once(backends, telegram, tmp_path):
    telegram.requests = TimedRequests()
    telegram.retry_after = 1
    telegram.modes = ["flood"]
    backend = backends().start()
    post_outage(backend)
    wait_until(lambda: len(telegram_rows(backend)) == 2, 15, message="a failed and a sent Telegram row")
    rows = telegram_rows(backend)
    record_telegram("telegram 429 retry_after=1", telegram, backend)
    assert [(r[0], r[1], r[2]) for r in rows] == [("FAILED", 429, 0), ("SENT", 200, 1)]
    assert "retry after 1" in rows[0][3]
    first, second = send_times(telegram)
    assert second - first >= 0.9, f"retried {second - first:.2f}s after a 429 asking for 1s"
    assert [m["message_id"] for m in telegram.sent_messages()] == [int(rows[1][4])]
    backend.stop()
    assert_no_secret_in_any_file(tmp_path, BOT_TOKEN, backend.env["API_KEY"])


# -- c. a Bot API that never answers ------------------------------------------------------------

def test_hanging_telegram_neither_slows_post_events_nor_console_and_fails_by_timeout(backends, telegram,
                                                                                     tmp_path):
    telegram.mode = "hang"
    backend = backends().start()
    _, took = post_outage(backend)
    assert took < 2.0, f"POST /events took {took:.2f}s while Telegram hangs"
    wait_until(lambda: console_rows(backend) == [("ERROR", "SENT")], 5, message="the console block, unhindered")
    wait_until(lambda: len(telegram_rows(backend)) == 4 and pending_deliveries(backend) == 0, 30,
               message="four timed-out Telegram attempts")
    rows = telegram_rows(backend)
    record_telegram("telegram hangs", telegram, backend, f"POST /events answered in {took:.2f}s")
    assert [(r[0], r[2]) for r in rows] == [("FAILED", n) for n in range(4)]
    assert all(re.search(r"(?i)within 1s|timed? ?out", r[3] or "") for r in rows), rows
    assert telegram.sent_messages() == []
    backend.stop()
    assert_no_secret_in_any_file(tmp_path, BOT_TOKEN, backend.env["API_KEY"])


# -- d. kill -9 mid-delivery ----------------------------------------------------------------------

def test_delivery_cut_by_kill_9_is_delivered_once_by_the_restarted_backend(backends, telegram, tmp_path):
    telegram.mode = "hang"
    backend = backends(NOTIFY_TIMEOUT_SECONDS="20", NOTIFY_LEASE_SECONDS="60").start()  # in hand until the kill
    alert_id, _ = post_outage(backend)
    wait_until(lambda: len(send_requests(telegram)) == 1, 10, message="Telegram receiving the message")
    wait_until(lambda: console_rows(backend) == [("ERROR", "SENT")], 5, message="the console row")
    os.kill(backend.proc.pid, signal.SIGKILL)
    backend.proc.wait(timeout=10)
    assert backend.rows("SELECT status, attempts FROM deliveries WHERE channel = 'TELEGRAM'") == [("PENDING", 0)]

    telegram.mode = "ok"
    telegram.release.set()  # let the hung handler thread go; its client is dead
    backend.start()  # same database, same port; the dead holder's lease is taken over at once
    wait_until(lambda: telegram_rows(backend), 10, message="the restarted backend delivering")
    wait_until(lambda: pending_deliveries(backend) == 0, 10, message="the dispatcher idle")
    record_telegram("kill -9 mid-delivery", telegram, backend, "attempt in hand when killed; redelivered")
    assert len(telegram.sent_messages()) == 1
    rows = telegram_rows(backend)
    assert [(r[0], r[2]) for r in rows] == [("SENT", 0)]
    assert rows[0][4] == str(telegram.sent_messages()[0]["message_id"])
    assert backend.rows("SELECT alert_id, status FROM notification_logs WHERE channel = 'TELEGRAM'") == [
        (alert_id, "SENT")]
    assert console_rows(backend) == [("ERROR", "SENT")]  # the console was not notified twice
    backend.stop()
    assert_no_secret_in_any_file(tmp_path, BOT_TOKEN, backend.env["API_KEY"])


# -- e. clean restart while a retry waits --------------------------------------------------------

def test_retry_pending_across_a_clean_restart_is_sent_exactly_once(backends, telegram, tmp_path):
    telegram.requests = TimedRequests()
    telegram.modes = ["fail"]
    backend = backends(NOTIFY_BACKOFF_SECONDS="2").start()
    post_outage(backend)
    wait_until(lambda: len(telegram_rows(backend)) == 1, 10, message="the first, failed, attempt")
    assert backend.stop() == 0  # SIGTERM while the retry waits out its backoff
    assert backend.rows("SELECT status, attempts FROM deliveries WHERE channel = 'TELEGRAM'") == [("PENDING", 1)]
    assert telegram.sent_messages() == []

    backend.start()
    wait_until(lambda: len(telegram_rows(backend)) == 2, 15, message="the retry after the restart")
    wait_until(lambda: pending_deliveries(backend) == 0, 10, message="the dispatcher idle")
    record_telegram("clean restart, retry pending", telegram, backend, "SIGTERM during a 2 s backoff")
    assert [(r[0], r[1], r[2]) for r in telegram_rows(backend)] == [("FAILED", 500, 0), ("SENT", 200, 1)]
    assert len(telegram.sent_messages()) == 1
    assert len(send_requests(telegram)) == 2
    first, second = send_times(telegram)
    assert second - first >= 1.9, f"retried {second - first:.2f}s after the failure; the backoff is 2s"
    backend.stop()
    assert_no_secret_in_any_file(tmp_path, BOT_TOKEN, backend.env["API_KEY"])
