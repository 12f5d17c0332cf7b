"""The email's subject and bodies (SPEC §10), pure functions, in both NOTIFY_LANGUAGEs, exactly."""

from __future__ import annotations

import pytest

from backend.notifiers.email_text import email_html, email_subject, email_text
from backend.messages import Notice
from backend.rules import AlertType, WarningReason

OPEN = {"id": 7, "message": "Service is down: HTTP 503", "created_at": "2026-12-01 10:00:00", "resolved_at": None}
RESOLVED = {**OPEN, "resolved_at": "2026-12-01 10:05:00"}


def notice(kind: AlertType, status: int = 503, alert: dict | None = OPEN, target: str = "shop", **fields) -> Notice:
    values = dict(alert_id=7, notice_type=kind, target_url="https://shop.example/health?a=1&b=<2>",
                  status_code=status, response_time_ms=120, error_message=None, occurred_at="2026-12-01 10:00:00",
                  target=target, alert=alert)
    values.update(fields)
    return Notice(**values)


@pytest.mark.parametrize("kind", [AlertType.ERROR, AlertType.WARNING, AlertType.RECOVERY])
def test_the_subject_is_the_notice_type_then_the_targets_name(kind):
    assert email_subject(notice(kind)) == f"[{kind.value}] shop"


def test_a_target_without_a_name_is_named_by_its_url_and_a_name_never_breaks_the_header():
    assert email_subject(notice(AlertType.ERROR, target="")) == "[ERROR] https://shop.example/health?a=1&b=<2>"
    assert email_subject(notice(AlertType.ERROR, target="evil\r\nBcc: x@example.com")) == (
        "[ERROR] evil Bcc: x@example.com")


def test_the_outage_in_english():
    assert email_text(notice(AlertType.ERROR), "en") == (
        "🚨 Service outage alert\n\n"
        "Target: shop\n"
        "URL: https://shop.example/health?a=1&b=<2>\n"
        "Status: 503 Service Unavailable\n"
        "Response time: 120ms\n"
        "Message: Service is down: HTTP 503\n"
        "Checked at: 2026-12-01 10:00:00 UTC\n"
        "Alert opened: 2026-12-01 10:00:00 UTC\n")


def test_the_recovery_in_korean():
    assert email_text(notice(AlertType.RECOVERY, status=200, alert=RESOLVED, occurred_at="2026-12-01 10:05:00"),
                      "ko") == (
        "✅ 서비스 복구 알림\n\n"
        "대상: shop\n"
        "URL: https://shop.example/health?a=1&b=<2>\n"
        "상태: 200 OK\n"
        "응답시간: 120ms\n"
        "메시지: 서비스가 복구되었습니다\n"
        "점검시각: 2026-12-01 10:05:00 UTC\n"
        "알림 발생시각: 2026-12-01 10:00:00 UTC\n"
        "알림 해결시각: 2026-12-01 10:05:00 UTC\n")


@pytest.mark.parametrize("language, heading, message", [
    ("en", "⚠️ Service warning alert", "Message: response time 950 ms is over 800 ms (3 checks in a row)"),
    ("ko", "⚠️ 서비스 경고 알림", "메시지: 응답시간 950ms가 기준 800ms를 넘었습니다 (3회 연속)"),
])
def test_a_warning_says_its_cause(language, heading, message):
    slow = WarningReason("slow", response_time_ms=950, limit_ms=800, checks=3)
    text = email_text(notice(AlertType.WARNING, status=200, reason=slow, response_time_ms=950), language)
    assert text.startswith(heading + "\n\n") and message + "\n" in text


def test_the_error_in_korean_and_without_an_alert_falls_back_to_the_status():
    text = email_text(notice(AlertType.ERROR, status=None, alert=None, error_message="timed out"), "ko")
    assert text.splitlines()[0] == "🚨 서비스 장애 알림"
    assert "상태: Timeout\n" in text and "메시지: Timeout\n" in text and "알림 발생시각" not in text


def test_the_html_part_shows_the_same_rows_escaped_with_the_url_a_link():
    page = email_html(notice(AlertType.ERROR, target="<b>shop</b>"), "en")
    assert '<h2 style="color:#b00020">🚨 Service outage alert</h2>' in page
    assert "<td>&lt;b&gt;shop&lt;/b&gt;</td>" in page and "<b>shop" not in page
    assert ('<a href="https://shop.example/health?a=1&amp;b=&lt;2&gt;">https://shop.example/health?a=1&amp;b=&lt;2&gt;'
            "</a>") in page
    assert '<th align="left" style="padding:2px 12px 2px 0">Status</th><td>503 Service Unavailable</td>' in page
    assert page.startswith("<!DOCTYPE html>") and 'lang="en"' in page


def test_a_url_that_is_not_http_is_shown_but_not_linked():
    page = email_html(notice(AlertType.ERROR, target_url="javascript:alert(1)"), "en")
    assert "<td>javascript:alert(1)</td>" in page and "href" not in page
