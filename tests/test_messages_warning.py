"""WARNING notices (SPEC §9): their own text on the console and Telegram, in both languages, exactly."""

from __future__ import annotations

import pytest

from backend.messages import Notice, console_block, telegram_text, warning_text
from backend.rules import AlertType, WarningReason

SLOW = WarningReason("slow", response_time_ms=950, limit_ms=800, checks=3)
CERT = WarningReason("certificate", days_left=3, expires_at="2026-12-04 10:00:00")


def notice(reason: WarningReason) -> Notice:
    return Notice(alert_id=1, notice_type=AlertType.WARNING, target_url="https://example.com", status_code=200,
                  response_time_ms=950, error_message=None, occurred_at="2026-12-01 10:00:00", reason=reason)


@pytest.mark.parametrize("reason, language, expected", [
    (SLOW, "en", "response time 950 ms is over 800 ms (3 checks in a row)"),
    (SLOW, "ko", "응답시간 950ms가 기준 800ms를 넘었습니다 (3회 연속)"),
    (WarningReason("slow", response_time_ms=950, limit_ms=800, checks=1), "en",
     "response time 950 ms is over 800 ms (1 check)"),
    (CERT, "en", "certificate expires in 3 days (2026-12-04 10:00 UTC)"),
    (CERT, "ko", "인증서가 3일 후 만료됩니다 (2026-12-04 10:00 UTC)"),
    (WarningReason("certificate", days_left=1, expires_at="2026-12-02 10:00:00"), "en",
     "certificate expires in 1 day (2026-12-02 10:00 UTC)"),
    (WarningReason("certificate", days_left=0, expires_at="2026-11-30 10:00:00"), "en",
     "certificate has expired (2026-11-30 10:00 UTC)"),
])
def test_warning_text_says_what_was_seen(reason, language, expected):
    assert warning_text(reason, language) == expected


def test_the_console_block_of_a_warning():
    assert console_block(notice(SLOW)) == (
        "[2026-12-01 10:00:00] [ALERT] WARNING - https://example.com\n"
        "Status: 200 OK\n"
        "Response Time: 950ms\n"
        "Message: response time 950 ms is over 800 ms (3 checks in a row)")


def test_the_telegram_message_of_a_warning_in_korean_and_english():
    assert telegram_text(notice(CERT), "ko") == (
        "⚠️ 서비스 경고 알림\n\nURL: https://example.com\n상태: 200 OK\n응답시간: 950ms\n"
        "내용: 인증서가 3일 후 만료됩니다 (2026-12-04 10:00 UTC)\n발생시각: 2026-12-01 10:00:00")
    assert telegram_text(notice(SLOW), "en") == (
        "⚠️ Service warning alert\n\nURL: https://example.com\nStatus: 200 OK\nResponse time: 950ms\n"
        "Reason: response time 950 ms is over 800 ms (3 checks in a row)\nOccurred at: 2026-12-01 10:00:00")
