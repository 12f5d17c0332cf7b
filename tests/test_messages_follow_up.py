"""REMINDER and ESCALATION notices (SPEC §10, §11): their text on every channel, in both languages, exactly."""

from __future__ import annotations

import pytest

from backend.messages import Notice, console_block, duration_text, telegram_text
from backend.notifiers.email_text import email_html, email_subject, email_text
from backend.notifiers.webhook_payload import webhook_body
from backend.rules import AlertType

ALERT = {"id": 7, "target": "shop", "target_url": "https://shop.example/", "alert_type": "ERROR", "status": "OPEN",
         "created_at": "2026-12-01 10:00:00", "acknowledged_at": None, "resolved_at": None,
         "message": "Service is down: HTTP 503"}


def notice(kind: AlertType, queued_at: str | None = "2026-12-01 10:12:30") -> Notice:
    return Notice(alert_id=7, notice_type=kind, target_url="https://shop.example/", status_code=503,
                  response_time_ms=250, error_message="HTTP 503", occurred_at="2026-12-01 09:59:58", target="shop",
                  alert=ALERT, queued_at=queued_at)


@pytest.mark.parametrize("seconds, en, ko", [
    (45.9, "45 s", "45초"), (60, "1 min", "1분"), (12 * 60 + 30, "12 min", "12분"),
    (3600 + 5 * 60, "1 h 5 min", "1시간 5분"), (26 * 3600, "26 h 0 min", "26시간 0분"),
])
def test_how_long_an_alert_is_open_in_words(seconds, en, ko):
    assert (duration_text(seconds, "en"), duration_text(seconds, "ko")) == (en, ko)


def test_the_console_block_of_a_reminder_keeps_the_shape_and_is_stamped_when_it_was_queued():
    assert console_block(notice(AlertType.REMINDER)) == (
        "[2026-12-01 10:12:30] [ALERT] REMINDER - https://shop.example/\n"
        "Status: 503 Service Unavailable\n"
        "Response Time: 250ms\n"
        "Message: Alert still open after 12 min, not acknowledged")


def test_the_console_block_of_an_escalation():
    assert console_block(notice(AlertType.ESCALATION)).splitlines()[::3] == [
        "[2026-12-01 10:12:30] [ALERT] ESCALATION - https://shop.example/",
        "Message: Not acknowledged after 12 min: escalated"]


@pytest.mark.parametrize("kind, language, expected", [
    (AlertType.REMINDER, "ko", "🔁 미확인 알림 재알림\n\nURL: https://shop.example/\n상태: 503 Service Unavailable\n"
                               "응답시간: 250ms\n경과: 12분\n발생시각: 2026-12-01 09:59:58"),
    (AlertType.REMINDER, "en", "🔁 Reminder: alert still open\n\nURL: https://shop.example/\n"
                               "Status: 503 Service Unavailable\nResponse time: 250ms\nOpen for: 12 min\n"
                               "Occurred at: 2026-12-01 09:59:58"),
    (AlertType.ESCALATION, "ko", "📣 미확인 알림 에스컬레이션\n\nURL: https://shop.example/\n"
                                 "상태: 503 Service Unavailable\n응답시간: 250ms\n경과: 12분\n발생시각: 2026-12-01 09:59:58"),
    (AlertType.ESCALATION, "en", "📣 Escalation: alert not acknowledged\n\nURL: https://shop.example/\n"
                                 "Status: 503 Service Unavailable\nResponse time: 250ms\nOpen for: 12 min\n"
                                 "Occurred at: 2026-12-01 09:59:58"),
])
def test_the_telegram_text_of_reminders_and_escalations(kind, language, expected):
    assert telegram_text(notice(kind), language) == expected


def test_a_notice_without_its_queue_time_leaves_the_duration_out():
    assert "Open for" not in telegram_text(notice(AlertType.REMINDER, queued_at=None), "en")
    assert console_block(notice(AlertType.REMINDER, queued_at=None)).endswith(
        "Message: Alert still open, not acknowledged")


def test_email_subjects_bodies_and_the_webhook_say_reminder_and_escalation():
    assert email_subject(notice(AlertType.REMINDER)) == "[REMINDER] shop"
    assert email_subject(notice(AlertType.ESCALATION)) == "[ESCALATION] shop"
    body = email_text(notice(AlertType.ESCALATION), "en")
    assert "Message: Not acknowledged after 12 min: escalated\n" in body and "Open for: 12 min\n" in body
    assert "경과: 12분" in email_text(notice(AlertType.REMINDER), "ko")
    assert "Alert still open after 12 min" in email_html(notice(AlertType.REMINDER), "en")
    assert webhook_body(notice(AlertType.REMINDER), "2026-12-01T10:12:31Z")["notice_type"] == "REMINDER"
