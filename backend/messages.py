"""Notification text for every channel, built by pure functions (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping
from http import HTTPStatus

from backend.rules import AlertType, WarningReason


@dataclass(frozen=True)
class Notice:
    """One thing to tell people about: an alert opened (ERROR, WARNING), its target recovered (RECOVERY), or it is
    still open (REMINDER) or nobody acknowledged it (ESCALATION)."""

    alert_id: int
    notice_type: AlertType      # ERROR, WARNING, RECOVERY, REMINDER or ESCALATION
    target_url: str
    status_code: int | None
    response_time_ms: int | None
    error_message: str | None
    occurred_at: str            # the check's UTC time, YYYY-MM-DD HH:MM:SS
    reason: WarningReason | None = None  # a WARNING's cause
    target: str = ""            # the target's name (SPEC §8); its URL for a target not in the file
    alert: Mapping[str, Any] | None = None  # the alert as GET /alerts/<id> shows it, when the notice is sent
    queued_at: str | None = None  # when the notice was queued (UTC, stored form): a REMINDER's "open for" counts to it


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


FOLLOW_UPS = (AlertType.REMINDER, AlertType.ESCALATION)  # notices about an alert already notified (SPEC §11)


def open_for(notice: Notice) -> float | None:
    """How many seconds the notice's alert had been open when the notice was queued; None when unknown."""
    created = (notice.alert or {}).get("created_at")
    if not created or not notice.queued_at:
        return None
    return max(0.0, (datetime.fromisoformat(notice.queued_at) - datetime.fromisoformat(created)).total_seconds())


def duration_text(seconds: float, language: str = "en") -> str:
    """`45 s`, `12 min`, `2 h 5 min` (ko: `45초`, `12분`, `2시간 5분`), rounded down."""
    whole = int(seconds)
    hours, minutes = divmod(whole // 60, 60)
    if language == "ko":
        return f"{whole}초" if whole < 60 else f"{hours}시간 {minutes}분" if hours else f"{minutes}분"
    return f"{whole} s" if whole < 60 else f"{hours} h {minutes} min" if hours else f"{minutes} min"


def follow_up_text(notice: Notice, language: str = "en") -> str:
    """A REMINDER's or an ESCALATION's one sentence: `Alert still open after 12 min, not acknowledged`."""
    seconds = open_for(notice)
    after = duration_text(seconds, language) if seconds is not None else None
    if notice.notice_type is AlertType.ESCALATION:
        if language == "ko":
            return f"{after} 동안 확인되지 않아 에스컬레이션되었습니다" if after else "확인되지 않아 에스컬레이션되었습니다"
        return f"Not acknowledged after {after}: escalated" if after else "Not acknowledged: escalated"
    if language == "ko":
        return f"알림이 {after}째 확인되지 않았습니다" if after else "알림이 아직 확인되지 않았습니다"
    return f"Alert still open after {after}, not acknowledged" if after else "Alert still open, not acknowledged"


def console_block(notice: Notice) -> str:
    """The console/server.log block, exactly as SPEC §6 shows it; a REMINDER or ESCALATION in the same shape,
    stamped with when it was queued and saying how long the alert has been open on its Message line."""
    stamp = notice.queued_at[:19] if notice.notice_type in FOLLOW_UPS and notice.queued_at else notice.occurred_at
    lines = [
        f"[{stamp}] [ALERT] {notice.notice_type.value} - {notice.target_url}",
        f"Status: {status_text(notice.status_code, notice.error_message)}",
    ]
    if notice.response_time_ms is not None:
        lines.append(f"Response Time: {notice.response_time_ms}ms")
    if notice.notice_type in FOLLOW_UPS:
        lines.append(f"Message: {follow_up_text(notice)}")
    elif notice.notice_type is AlertType.WARNING and notice.reason is not None:
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
    reminder: str
    escalation: str
    open_for: str


# NOTIFY_LANGUAGE (SPEC §10): `ko` is the original design's Telegram text (SPEC §6), `en` the same in English.
WORDING = {
    "ko": Wording("🚨 서비스 장애 알림", "✅ 서비스 복구 알림", "⚠️ 서비스 경고 알림", "내용", "상태", "응답시간",
                  "발생시각", "복구시각", reminder="🔁 미확인 알림 재알림", escalation="📣 미확인 알림 에스컬레이션",
                  open_for="경과"),
    "en": Wording("🚨 Service outage alert", "✅ Service recovery alert", "⚠️ Service warning alert", "Reason",
                  "Status", "Response time", "Occurred at", "Recovered at", reminder="🔁 Reminder: alert still open",
                  escalation="📣 Escalation: alert not acknowledged", open_for="Open for"),
}
LANGUAGES = tuple(WORDING)  # the first is the default


def heading(notice: Notice, language: str = LANGUAGES[0]) -> str:
    """A message's first line, by notice type: `🚨 서비스 장애 알림` / `🚨 Service outage alert`, ..."""
    words = WORDING[language]
    return {AlertType.ERROR: words.outage, AlertType.WARNING: words.warning, AlertType.REMINDER: words.reminder,
            AlertType.ESCALATION: words.escalation}.get(notice.notice_type, words.recovery)


def telegram_text(notice: Notice, language: str = LANGUAGES[0]) -> str:
    """The plain-text Telegram message of SPEC §6, in `language` (ko: exactly the spec's text)."""
    words = WORDING[language]
    kind = notice.notice_type
    lines = [heading(notice, language), "", f"URL: {notice.target_url}",
             f"{words.status}: {status_text(notice.status_code, notice.error_message)}"]
    if notice.response_time_ms is not None:
        lines.append(f"{words.response_time}: {notice.response_time_ms}ms")
    if kind in (AlertType.WARNING, *FOLLOW_UPS) and notice.reason is not None:  # a WARNING alert's cause
        lines.append(f"{words.reason}: {warning_text(notice.reason, language)}")
    seconds = open_for(notice) if kind in FOLLOW_UPS else None
    if seconds is not None:
        lines.append(f"{words.open_for}: {duration_text(seconds, language)}")
    lines.append(f"{words.recovered_at if kind is AlertType.RECOVERY else words.occurred_at}: {notice.occurred_at}")
    return "\n".join(lines)
