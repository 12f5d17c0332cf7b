"""Notification text (SPEC §6): the console block and the Telegram message, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.messages import LANGUAGES, Notice, alert_message, console_block, status_text, telegram_text
from backend.rules import AlertType

URL = "https://example.com"
AT = "2025-01-08 15:30:45"


def notice(kind: AlertType = AlertType.ERROR, status_code: int | None = 503, response_time_ms: int | None = 5000,
           error_message: str | None = None) -> Notice:
    return Notice(alert_id=1, notice_type=kind, target_url=URL, status_code=status_code,
                  response_time_ms=response_time_ms, error_message=error_message, occurred_at=AT)


SCENARIOS = {
    "outage with a status and a response time": (
        notice(),
        "[2025-01-08 15:30:45] [ALERT] ERROR - https://example.com\n"
        "Status: 503 Service Unavailable\n"
        "Response Time: 5000ms\n"
        "Message: Service is down",
        "🚨 서비스 장애 알림\n"
        "\n"
        "URL: https://example.com\n"
        "상태: 503 Service Unavailable\n"
        "응답시간: 5000ms\n"
        "발생시각: 2025-01-08 15:30:45",
    ),
    "timeout with a null status": (
        notice(status_code=None, response_time_ms=5000, error_message="Request timed out after 5000ms"),
        "[2025-01-08 15:30:45] [ALERT] ERROR - https://example.com\n"
        "Status: Timeout\n"
        "Response Time: 5000ms\n"
        "Message: Service is down",
        "🚨 서비스 장애 알림\n"
        "\n"
        "URL: https://example.com\n"
        "상태: Timeout\n"
        "응답시간: 5000ms\n"
        "발생시각: 2025-01-08 15:30:45",
    ),
    "response time unknown": (
        notice(status_code=None, response_time_ms=None, error_message="Request timed out after 5000ms"),
        "[2025-01-08 15:30:45] [ALERT] ERROR - https://example.com\n"
        "Status: Timeout\n"
        "Message: Service is down",
        "🚨 서비스 장애 알림\n"
        "\n"
        "URL: https://example.com\n"
        "상태: Timeout\n"
        "발생시각: 2025-01-08 15:30:45",
    ),
    "recovery": (
        notice(AlertType.RECOVERY, status_code=200, response_time_ms=87),
        "[2025-01-08 15:30:45] [ALERT] RECOVERY - https://example.com\n"
        "Status: 200 OK\n"
        "Response Time: 87ms\n"
        "Message: Service has been recovered",
        "✅ 서비스 복구 알림\n"
        "\n"
        "URL: https://example.com\n"
        "상태: 200 OK\n"
        "응답시간: 87ms\n"
        "복구시각: 2025-01-08 15:30:45",
    ),
    "recovery with no response time": (
        notice(AlertType.RECOVERY, status_code=200, response_time_ms=None),
        "[2025-01-08 15:30:45] [ALERT] RECOVERY - https://example.com\n"
        "Status: 200 OK\n"
        "Message: Service has been recovered",
        "✅ 서비스 복구 알림\n"
        "\n"
        "URL: https://example.com\n"
        "상태: 200 OK\n"
        "복구시각: 2025-01-08 15:30:45",
    ),
}


@pytest.mark.parametrize("given, expected_console, _", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_console_block_is_exactly_the_spec_block(given, expected_console, _):
    assert console_block(given) == expected_console


@pytest.mark.parametrize("given, _, expected_telegram", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_telegram_text_is_exactly_the_spec_message(given, _, expected_telegram):
    assert telegram_text(given) == expected_telegram
    assert telegram_text(given, "ko") == expected_telegram  # NOTIFY_LANGUAGE=ko is the default


ENGLISH = {
    "outage with a status and a response time": (
        notice(),
        "🚨 Service outage alert\n"
        "\n"
        "URL: https://example.com\n"
        "Status: 503 Service Unavailable\n"
        "Response time: 5000ms\n"
        "Occurred at: 2025-01-08 15:30:45",
    ),
    "timeout, response time unknown": (
        notice(status_code=None, response_time_ms=None, error_message="Request timed out after 5000ms"),
        "🚨 Service outage alert\n"
        "\n"
        "URL: https://example.com\n"
        "Status: Timeout\n"
        "Occurred at: 2025-01-08 15:30:45",
    ),
    "recovery": (
        notice(AlertType.RECOVERY, status_code=200, response_time_ms=87),
        "✅ Service recovery alert\n"
        "\n"
        "URL: https://example.com\n"
        "Status: 200 OK\n"
        "Response time: 87ms\n"
        "Recovered at: 2025-01-08 15:30:45",
    ),
}


@pytest.mark.parametrize("given, expected", ENGLISH.values(), ids=ENGLISH.keys())
def test_telegram_text_in_english_is_the_same_message_in_english(given, expected):
    assert telegram_text(given, "en") == expected


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_keeps_the_shape_of_the_spec_message(language):
    """Same lines in the same order: heading, blank, URL, status, response time, time."""
    for given, _, korean in SCENARIOS.values():
        text = telegram_text(given, language)
        assert len(text.splitlines()) == len(korean.splitlines())
        assert text.splitlines()[2] == korean.splitlines()[2]  # the URL line is the same in every language


@pytest.mark.parametrize("status_code, error_message, expected", [
    (200, None, "200 OK"),
    (503, None, "503 Service Unavailable"),
    (404, "HTTP 404", "404 Not Found"),
    (299, None, "299"),   # a valid but unnamed code: the number alone
    (499, None, "499"),
    (599, None, "599"),
    (None, "Request timed out after 5000ms", "Timeout"),
    (None, "Read TIMED OUT", "Timeout"),
    (None, "Connection refused", "No response"),
    (None, None, "No response"),
])
def test_status_text_names_known_codes_and_falls_back_for_unknown_ones(status_code, error_message, expected):
    assert status_text(status_code, error_message) == expected


def test_alert_message_prefers_the_error_message_then_the_status():
    assert alert_message(503, "HTTP 503 Service Unavailable") == "Service is down: HTTP 503 Service Unavailable"
    assert alert_message(503, None) == "Service is down: 503 Service Unavailable"
    assert alert_message(None, None) == "Service is down: No response"


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_readme_shows_both_telegram_messages_as_sent(language):
    """README's Telegram section quotes the outage and the recovery message in each language exactly."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    outage = notice(status_code=503, response_time_ms=5000)
    recovery = Notice(alert_id=1, notice_type=AlertType.RECOVERY, target_url=URL, status_code=200,
                      response_time_ms=87, error_message=None, occurred_at="2025-01-08 15:32:10")
    for given in (outage, recovery):
        block = "\n".join(f"  {line}" if line else "" for line in telegram_text(given, language).splitlines())
        assert f"  ```\n{block}\n  ```" in readme
