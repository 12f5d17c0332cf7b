"""Notification text for every channel, built by pure functions (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from backend.rules import AlertType


@dataclass(frozen=True)
class Notice:
    """One thing to tell people about: an alert opened (ERROR) or its target recovered (RECOVERY)."""

    alert_id: int
    notice_type: AlertType      # ERROR or RECOVERY
    target_url: str
    status_code: int | None
    response_time_ms: int | None
    error_message: str | None
    occurred_at: str            # the check's UTC time, YYYY-MM-DD HH:MM:SS


def status_text(status_code: int | None, error_message: str | None) -> str:
    """`503 Service Unavailable`, `Timeout`, or why there was no answer at all."""
    if status_code is not None:
        try:
            return f"{status_code} {HTTPStatus(status_code).phrase}"
        except ValueError:
            return str(status_code)
    if error_message and "timed out" in error_message.lower():
        return "Timeout"
    return "No response"


def alert_message(status_code: int | None, error_message: str | None) -> str:
    """The `message` stored on an ERROR alert: what was seen when it opened."""
    detail = error_message or status_text(status_code, error_message)
    return f"Service is down: {detail}"


def console_block(notice: Notice) -> str:
    """The console/server.log block, exactly as SPEC §6 shows it."""
    is_error = notice.notice_type is AlertType.ERROR
    lines = [
        f"[{notice.occurred_at}] [ALERT] {notice.notice_type.value} - {notice.target_url}",
        f"Status: {status_text(notice.status_code, notice.error_message)}",
    ]
    if notice.response_time_ms is not None:
        lines.append(f"Response Time: {notice.response_time_ms}ms")
    lines.append("Message: Service is down" if is_error else "Message: Service has been recovered")
    return "\n".join(lines)


@dataclass(frozen=True)
class Wording:
    """The words of a chat message in one language: the two headings, the labels, the time labels."""

    outage: str
    recovery: str
    status: str
    response_time: str
    occurred_at: str
    recovered_at: str


# NOTIFY_LANGUAGE (SPEC §10): `ko` is the original design's Telegram text (SPEC §6), `en` the same in English.
WORDING = {
    "ko": Wording("🚨 서비스 장애 알림", "✅ 서비스 복구 알림", "상태", "응답시간", "발생시각", "복구시각"),
    "en": Wording("🚨 Service outage alert", "✅ Service recovery alert", "Status", "Response time",
                  "Occurred at", "Recovered at"),
}
LANGUAGES = tuple(WORDING)  # the first is the default


def telegram_text(notice: Notice, language: str = LANGUAGES[0]) -> str:
    """The plain-text Telegram message of SPEC §6, in `language` (ko: exactly the spec's text)."""
    words = WORDING[language]
    is_error = notice.notice_type is AlertType.ERROR
    lines = [words.outage if is_error else words.recovery, "", f"URL: {notice.target_url}",
             f"{words.status}: {status_text(notice.status_code, notice.error_message)}"]
    if notice.response_time_ms is not None:
        lines.append(f"{words.response_time}: {notice.response_time_ms}ms")
    lines.append(f"{words.occurred_at if is_error else words.recovered_at}: {notice.occurred_at}")
    return "\n".join(lines)
