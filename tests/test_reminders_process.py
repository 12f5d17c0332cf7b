"""Reminders and escalation with real backend processes (SPEC §11): due rows that survive a restart.

The alert opens through POST /events as an agent's failed check would open it; reminders go to the
console, the escalation to a real local webhook receiver that verifies each signature.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.procs import Backend, wait_until
from tests.support.webhook_receiver import WebhookReceiver

SECRET = "whsec-reminders-0123456789"
SHOP = "https://shop.example/"
TARGETS = f"""
targets:
  - name: shop
    url: "{SHOP}"
    failure_threshold: 1
    channels: [console]
    escalate: {{after_minutes: 0.1, channels: [webhook]}}
"""


@pytest.fixture
def receiver():
    server = WebhookReceiver(SECRET).start()
    yield server
    server.stop()


def fail_once(backend: Backend) -> int:
    """POST one failed check of shop; the id of the ERROR it opened."""
    body = {"target_url": SHOP, "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "is_success": False, "status_code": 503, "response_time_ms": 250,
            "error_message": "HTTP 503 Service Unavailable", "event_uid": str(uuid.uuid4())}
    answer = backend.api("POST", "/events", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["alert"]["id"]


def sent(backend: Backend, notice_type: str) -> list[tuple]:
    return backend.rows("SELECT channel, status FROM notification_logs WHERE notice_type = ? ORDER BY id",
                        notice_type)


def queued(backend: Backend, notice_type: str) -> int:
    return backend.rows("SELECT COUNT(*) FROM deliveries WHERE notice_type = ?", notice_type)[0][0]


def passes_after(backend: Backend, moment: str, seconds: float) -> None:
    """Wait (bounded) until the timer has beaten `seconds` past `moment` (stored UTC text): its passes ran."""
    until = (datetime.fromisoformat(moment) + timedelta(seconds=seconds)).isoformat(sep=" ")
    wait_until(lambda: backend.rows("SELECT beat_at FROM deadline_timer")[0][0] > until, 15,
               message=f"a timer pass after {until}")


def test_reminders_every_interval_and_one_escalation_to_the_webhook_until_ack(tmp_path, receiver):
    (tmp_path / "targets.yaml").write_text(TARGETS, encoding="utf-8")
    backend = Backend(tmp_path, REMINDER_MINUTES="0.05", WEBHOOK_URL=receiver.url, WEBHOOK_SECRET=SECRET,
                      NOTIFY_BACKOFF_SECONDS="0.1").start()
    try:
        alert_id = fail_once(backend)
        # REMINDER at 3 s and 6 s on the target's channel; ESCALATION at 6 s, on the webhook only.
        wait_until(lambda: len(sent(backend, "REMINDER")) >= 2 and receiver.verified_notices(), 20,
                   message="two reminders and the escalation")
        assert backend.api("PATCH", f"/alerts/{alert_id}", json={"status": "ACK"}).status_code == 200
        [due] = backend.rows("SELECT remind_at FROM alerts WHERE id = ?", alert_id)[0]
        passes_after(backend, due, 1.5)  # the next reminder's time has passed: ACK stopped it
        assert queued(backend, "REMINDER") == len(sent(backend, "REMINDER"))
        assert set(sent(backend, "REMINDER")) == {("CONSOLE", "SENT")}
        assert sent(backend, "ERROR") == [("CONSOLE", "SENT")]
        assert sent(backend, "ESCALATION") == [("WEBHOOK", "SENT")]
        [notice] = receiver.verified_notices()
        assert (notice["notice_type"], notice["alert"]["id"], notice["alert"]["target"]) == ("ESCALATION", alert_id,
                                                                                               "shop")
        assert "[ALERT] REMINDER - https://shop.example/" in backend.stdout_path.read_text(encoding="utf-8")
    finally:
        backend.stop()


def test_a_reminder_due_while_the_backend_was_down_goes_out_once_when_it_is_back(tmp_path):
    (tmp_path / "targets.yaml").write_text(TARGETS.replace("    escalate: {after_minutes: 0.1, channels: [webhook]}\n",
                                                           ""), encoding="utf-8")
    first = Backend(tmp_path, REMINDER_MINUTES="0.2").start()
    try:
        alert_id = fail_once(first)
    finally:
        first.stop()
    # Down for 30 s as far as the alert can tell: its reminder came due 30 s ago, two intervals of 12 s missed.
    down_since = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=30)
    first.rows("UPDATE alerts SET remind_at = ? WHERE id = ? RETURNING id", down_since.isoformat(sep=" "), alert_id)
    second = Backend(tmp_path, REMINDER_MINUTES="0.2").start()
    try:
        wait_until(lambda: queued(second, "REMINDER"), 15, message="the missed reminder")
        [resent] = second.rows("SELECT created_at FROM deliveries WHERE notice_type = 'REMINDER'")[0]
        passes_after(second, resent, 2.5)  # more passes ran: none sends it again, nor the missed intervals
        assert queued(second, "REMINDER") == 1
        [next_at] = second.rows("SELECT remind_at FROM alerts WHERE id = ?", alert_id)[0]
        assert datetime.fromisoformat(next_at) - datetime.fromisoformat(resent) >= timedelta(seconds=11)
        wait_until(lambda: sent(second, "REMINDER") == [("CONSOLE", "SENT")], 10, message="the reminder sent")
    finally:
        second.stop()
