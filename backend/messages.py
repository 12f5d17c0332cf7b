"""Notification text for every channel, built by pure functions (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping
from http import HTTPStatus

from backend.rules import AlertType, WarningReason


@dataclass(frozen=True)
class Notice:
    """One thing to tell people about: an alert opened (ERROR, WARNING) or its target recovered (RECOVERY)."""

    alert_id: int
    notice_type: AlertType      # ERROR, WARNING or RECOVERY
    target_url: str
    status_code: int | None
    response_time_ms: int | None
    error_message: str | None
    occurred_at: str            # the check's UTC time, YYYY-MM-DD HH:MM:SS
    reason: WarningReason | None = None  # a WARNING's cause
    target: str = ""            # the target's name (SPEC §8); its URL for a target not in the file
    alert: Mapping[str, Any] | None = None  # the alert as GET /alerts/<id> shows it, when the notice is sent


def warning_text(reason: WarningReason, language: str = "en") -> str:
    """A WARNING's cause in words: `response time 950 ms is over 800 ms (3 checks in a row)` (SPEC §9)."""
    if reason.kind == "slow":
        if language == "ko":
            return (f"응답시간 {reason.response_time_ms}ms가 기준 {reason.limit_ms}ms를 넘었습니다 "
                    f"({reason.checks}회 연속)")
        checks = "1 check" if reason.checks == 1 else f"{reason.checks} checks in a row"
        return f"response time {reason.response_time_ms} ms is over {reason.limit_ms} ms ({checks})"
    when = f" ({reason.expires_at[:16]} UTC)" if reason.expires_at else ""
    if reason.days_left == 0:
        return f"인증서가 만료되었습니다{when}" if language == "ko" else f"certificate has expired{when}"
    if language == "ko":
        return f"인증서가 {reason.days_left}일 후 만료됩니다{when}"
    days = "1 day" if reason.days_left == 1 else f"{reason.days_left} days"
    return f"certificate expires in {days}{when}"


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
    lines = [
        f"[{notice.occurred_at}] [ALERT] {notice.notice_type.value} - {notice.target_url}",
        f"Status: {status_text(notice.status_code, notice.error_message)}",
    ]
    if notice.response_time_ms is not None:
        lines.append(f"Response Time: {notice.response_time_ms}ms")
    if notice.notice_type is AlertType.WARNING and notice.reason is not None:
        lines.append(f"Message: {warning_text(notice.reason)}")
    elif notice.notice_type is AlertType.RECOVERY:
        lines.append("Message: Service has been recovered")
    else:
        lines.append("Message: Service is down")
    return "\n".join(lines)


@dataclass(frozen=True)
class Wording:
    """The words of a chat message in one language: the two headings, the labels, the time labels."""

    outage: str
    recovery: str
    warning: str
    reason: str
    status: str
    response_time: str
    occurred_at: str
    recovered_at: str


# NOTIFY_LANGUAGE (SPEC §10): `ko` is the original design's Telegram text (SPEC §6), `en` the same in English.
WORDING = {
    "ko": Wording("🚨 서비스 장애 알림", "✅ 서비스 복구 알림", "⚠️ 서비스 경고 알림", "내용", "상태", "응답시간",
                  "발생시각", "복구시각"),
    "en": Wording("🚨 Service outage alert", "✅ Service recovery alert", "⚠️ Service warning alert", "Reason",
                  "Status", "Response time", "Occurred at", "Recovered at"),
}
LANGUAGES = tuple(WORDING)  # the first is the default


def heading(notice: Notice, language: str = LANGUAGES[0]) -> str:
    """A message's first line, by notice type: `🚨 서비스 장애 알림` / `🚨 Service outage alert`, ..."""
    words = WORDING[language]
    return {AlertType.ERROR: words.outage, AlertType.WARNING: words.warning}.get(notice.notice_type, words.recovery)


def telegram_text(notice: Notice, language: str = LANGUAGES[0]) -> str:
    """The plain-text Telegram message of SPEC §6, in `language` (ko: exactly the spec's text)."""
    words = WORDING[language]
    kind = notice.notice_type
    lines = [heading(notice, language), "", f"URL: {notice.target_url}",
             f"{words.status}: {status_text(notice.status_code, notice.error_message)}"]
    if notice.response_time_ms is not None:
        lines.append(f"{words.response_time}: {notice.response_time_ms}ms")
    if kind is AlertType.WARNING and notice.reason is not None:
        lines.append(f"{words.reason}: {warning_text(notice.reason, language)}")
    lines.append(f"{words.recovered_at if kind is AlertType.RECOVERY else words.occurred_at}: {notice.occurred_at}")
    return "\n".join(lines)
