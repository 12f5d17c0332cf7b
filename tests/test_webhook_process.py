"""The webhook channel end to end: the real backend process POSTs signed notices to a real local receiver.

The receiver verifies every request with the README's example code (scripts/webhook_receiver_example.py);
the assertions read what it verified and the real database's notification_logs.
"""

import uuid
from datetime import datetime, timezone

import pytest

from tests.support.procs import Backend, assert_no_secret_in_any_file, base_env, wait_until
from tests.support.webhook_receiver import WebhookReceiver
from tests.test_startup import assert_refused, run_entry

SECRET = "whsec-process-test-SECRET-0123456789"
HOOK_PATH = "hook/path-token-SECRET"  # a hook URL's path is often a secret too: it must not leak either
SHOP, BLOG = "https://shop.example/", "https://blog.example/"


@pytest.fixture
def receiver():
    server = WebhookReceiver(SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def backends(tmp_path, receiver):
    """Make backends whose webhook points at the receiver; every one is stopped by PID at teardown."""
    made: list[Backend] = []

    def make(**env: str) -> Backend:
        settings = {"FAILURE_THRESHOLD": "1", "WEBHOOK_URL": f"{receiver.url}{HOOK_PATH}", "WEBHOOK_SECRET": SECRET,
                    "NOTIFY_BACKOFF_SECONDS": "0.1", "NOTIFY_TIMEOUT_SECONDS": "2", **env}
        backend = Backend(tmp_path, **settings).start()
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.stop()


def post_check(backend: Backend, url: str, ok: bool) -> dict | None:
    """POST one check result; the alert it opened or resolved, if any."""
    body = {"target_url": url, "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "is_success": ok, "status_code": 200 if ok else 503, "response_time_ms": 42 if ok else 250,
            "error_message": None if ok else "HTTP 503 Service Unavailable", "event_uid": str(uuid.uuid4())}
    answer = backend.api("POST", "/events", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["alert"]


def webhook_rows(backend: Backend) -> list[tuple]:
    return backend.rows("SELECT notice_type, status, response_code, retry_count, error_message "
                        "FROM notification_logs WHERE channel = 'WEBHOOK' ORDER BY id")


def settled(backend: Backend, count: int):
    """Wait until `count` webhook deliveries are no longer pending; return the webhook rows."""
    wait_until(lambda: backend.rows("SELECT COUNT(*) FROM deliveries WHERE channel = 'WEBHOOK' AND status != "
                                    "'PENDING'")[0][0] >= count, 15, message=f"{count} webhook deliveries")
    return webhook_rows(backend)


def test_an_outage_and_its_recovery_reach_the_receiver_signed_and_only_for_targets_routed_to_it(
        tmp_path, receiver, backends):
    (tmp_path / "targets.yaml").write_text(f"""\
targets:
  - {{name: shop, url: "{SHOP}", channels: [webhook]}}
  - {{name: blog, url: "{BLOG}", channels: [console]}}
""", encoding="utf-8")
    backend = backends()
    opened = post_check(backend, SHOP, ok=False)
    post_check(backend, BLOG, ok=False)  # its notices go to the console only
    resolved = post_check(backend, SHOP, ok=True)
    assert resolved["id"] == opened["id"]

    assert settled(backend, 2) == [("ERROR", "SENT", None, 0, None), ("RECOVERY", "SENT", None, 0, None)]
    error, recovery = receiver.verified_notices()
    assert len(receiver.requests) == 2  # nothing for blog
    assert error["notice_type"] == "ERROR" and recovery["notice_type"] == "RECOVERY"
    assert error["alert"]["id"] == recovery["alert"]["id"] == opened["id"]
    assert error["alert"]["target"] == "shop" and error["alert"]["target_url"] == SHOP
    assert error["alert"]["alert_type"] == "ERROR" and error["alert"]["created_at"] == opened["created_at"]
    assert recovery["alert"]["status"] == "RESOLVED" and recovery["alert"]["resolved_at"] is not None
    assert error["alert"]["message"] == opened["message"]
    assert error["event"]["status_code"] == 503 and error["event"]["error_message"] == "HTTP 503 Service Unavailable"
    assert error["event"]["response_time_ms"] == 250 and error["event"]["target_url"] == SHOP
    assert recovery["event"]["status_code"] == 200 and recovery["event"]["response_time_ms"] == 42
    assert set(error) == {"notice_type", "alert", "event", "sent_at"}
    headers = receiver.requests[0]["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("outage-backend-webhook/")
    assert receiver.requests[0]["path"] == f"/{HOOK_PATH}"
    assert "channels: CONSOLE, WEBHOOK" in backend.log_text()


def test_a_failing_receiver_is_retried_and_a_wrong_secret_fails_without_leaking_either_secret(
        tmp_path, receiver, backends):
    receiver.statuses = [500]  # then the example's own verification, which accepts
    backend = backends(NOTIFY_RETRIES="1")
    post_check(backend, SHOP, ok=False)
    rows = settled(backend, 1)
    assert [(r[1], r[2], r[3]) for r in rows] == [("FAILED", 500, 0), ("SENT", None, 1)]
    assert rows[0][4].startswith("webhook 127.0.0.1:") and "answered 500 Internal Server Error" in rows[0][4]
    assert [n["notice_type"] for n in receiver.verified_notices()] == ["ERROR"]

    receiver.secret = "not-the-backend-s-secret"  # the receiver now refuses every signature: 401
    post_check(backend, SHOP, ok=True)
    rows = settled(backend, 2)[2:]
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [("RECOVERY", "FAILED", 401, 0), ("RECOVERY", "FAILED", 401, 1)]
    assert "answered 401 Unauthorized" in rows[-1][4]
    assert len(receiver.verified_notices()) == 1
    backend.stop()
    assert_no_secret_in_any_file(tmp_path, SECRET, HOOK_PATH)


def test_a_receiver_asking_to_wait_is_honoured(tmp_path, receiver, backends):
    receiver.statuses = [429]
    receiver.extra_headers = {"Retry-After": "1"}
    backend = backends(NOTIFY_BACKOFF_SECONDS="0.01")
    post_check(backend, SHOP, ok=False)
    wait_until(lambda: len(receiver.verified_notices()) == 1, 15, message="the retried notice")
    assert [(r[1], r[2]) for r in settled(backend, 1)] == [("FAILED", 429), ("SENT", None)]
    first, second = receiver.requests
    assert second["at"] - first["at"] >= 1.0  # the 1 s asked for, not the 0.01 s backoff


@pytest.mark.parametrize("env, key, words", [
    ({"WEBHOOK_URL": "http://127.0.0.1:9/hook"}, "WEBHOOK_SECRET", ["is required when WEBHOOK_URL is set"]),
    ({"WEBHOOK_SECRET": SECRET}, "WEBHOOK_URL", ["is required when WEBHOOK_SECRET is set"]),
    ({"WEBHOOK_URL": "ftp://hooks.example/x-SECRET", "WEBHOOK_SECRET": SECRET}, "WEBHOOK_URL",
     ["must be an http(s) URL", "must start with http:// or https://"]),
], ids=["url-without-secret", "secret-without-url", "not-http"])
def test_a_half_set_or_bad_webhook_stops_the_start_with_one_line(tmp_path, env, key, words):
    line = assert_refused(run_entry(["backend/app.py"], base_env(tmp_path, **env)), key, *words)
    assert SECRET not in line and "x-SECRET" not in line
