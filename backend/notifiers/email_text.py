"""The email channel's subject, plain-text body and HTML body, built by pure functions (SPEC §10)."""

from __future__ import annotations

import html
from dataclasses import dataclass

from backend.messages import (FOLLOW_UPS, LANGUAGES, WORDING, Notice, duration_text, follow_up_text, heading, open_for,
                               status_text, warning_text)
from backend.rules import AlertType


@dataclass(frozen=True)
class EmailWording:
    """The labels only an email shows, in one language; the rest comes from messages.WORDING."""

    target: str
    message: str
    checked_at: str
    alert_opened: str
    alert_resolved: str
    recovered: str


EMAIL_WORDING = {
    "ko": EmailWording("대상", "메시지", "점검시각", "알림 발생시각", "알림 해결시각", "서비스가 복구되었습니다"),
    "en": EmailWording("Target", "Message", "Checked at", "Alert opened", "Alert resolved", "Service has been recovered"),
}
_COLOURS = {AlertType.ERROR: "#b00020", AlertType.WARNING: "#b26a00", AlertType.RECOVERY: "#1b7f3b",
            AlertType.REMINDER: "#b00020", AlertType.ESCALATION: "#6a1b9a"}


def email_subject(notice: Notice) -> str:
    """`[ERROR] <target name>`, `[WARNING] …`, `[RECOVERY] …`, `[REMINDER] …`, `[ESCALATION] …` (SPEC §10);
    the URL when the target has no name."""
    name = " ".join((notice.target or notice.target_url).split())  # a header holds no line break
    return f"[{notice.notice_type.value}] {name}"


def email_rows(notice: Notice, language: str = LANGUAGES[0]) -> list[tuple[str, str]]:
    """The body's (label, value) lines: target, URL, status, response time, message and times, in `language`."""
    words, labels = WORDING[language], EMAIL_WORDING[language]
    alert = notice.alert or {}
    rows = [(labels.target, notice.target or notice.target_url), ("URL", notice.target_url),
            (words.status, status_text(notice.status_code, notice.error_message))]
    if notice.response_time_ms is not None:
        rows.append((words.response_time, f"{notice.response_time_ms}ms"))
    rows.append((labels.message, _message(notice, language)))
    rows.append((labels.checked_at, _utc(notice.occurred_at)))
    if alert.get("created_at"):
        rows.append((labels.alert_opened, _utc(alert["created_at"])))
    seconds = open_for(notice) if notice.notice_type in FOLLOW_UPS else None
    if seconds is not None:
        rows.append((words.open_for, duration_text(seconds, language)))
    if alert.get("resolved_at"):
        rows.append((labels.alert_resolved, _utc(alert["resolved_at"])))
    return rows


def email_text(notice: Notice, language: str = LANGUAGES[0]) -> str:
    """The plain-text body: the heading, then one `Label: value` line per row."""
    lines = [heading(notice, language), ""]
    lines += [f"{label}: {value}" for label, value in email_rows(notice, language)]
    return "\n".join(lines) + "\n"


def email_html(notice: Notice, language: str = LANGUAGES[0]) -> str:
    """The HTML body: the same heading and rows as a table, every value escaped; the URL a link when it is http(s)."""
    cells = []
    for label, value in email_rows(notice, language):
        shown = html.escape(value)
        if label == "URL" and value.startswith(("http://", "https://")):
            shown = f'<a href="{html.escape(value, quote=True)}">{shown}</a>'
        cells.append(f'<tr><th align="left" style="padding:2px 12px 2px 0">{html.escape(label)}</th>'
                     f"<td>{shown}</td></tr>")
    colour = _COLOURS.get(notice.notice_type, "#1b7f3b")
    return (f'<!DOCTYPE html>\n<html lang="{language}"><head><meta charset="utf-8"></head>'
            f'<body style="font-family:sans-serif">\n'
            f'<h2 style="color:{colour}">{html.escape(heading(notice, language))}</h2>\n'
            f"<table>\n" + "\n".join(cells) + "\n</table>\n</body></html>\n")


def _message(notice: Notice, language: str) -> str:
    """What happened: the WARNING's cause, the recovery, or the alert's message as stored."""
    if notice.notice_type is AlertType.RECOVERY:
        return EMAIL_WORDING[language].recovered
    if notice.notice_type in FOLLOW_UPS:
        return follow_up_text(notice, language)
    if notice.notice_type is AlertType.WARNING and notice.reason is not None:
        return warning_text(notice.reason, language)
    return (notice.alert or {}).get("message") or status_text(notice.status_code, notice.error_message)


def _utc(stored: str) -> str:
    """A stored UTC time (`YYYY-MM-DD HH:MM:SS`, perhaps with a fraction) as the reader sees it."""
    return f"{stored[:19]} UTC"
