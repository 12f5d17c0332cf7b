"""Telegram's ACK / Resolve buttons (SPEC §10) as pure functions: the buttons, their data, a press's outcome."""

from __future__ import annotations

import re
from dataclasses import dataclass

from backend.rules import AlertStatus, AlertType

ACK, RESOLVE = "ack", "res"  # the action in a button's callback_data
LABELS = {ACK: "ACK", RESOLVE: "Resolve"}
# "res:9223372036854775807" is 23 bytes: far under Telegram's 64-byte limit on callback_data.
_DATA = re.compile(r"(ack|res):([1-9][0-9]{0,18})")


@dataclass(frozen=True)
class Press:
    """What a button asks: `action` (ACK or RESOLVE) on alert `alert_id`."""

    alert_id: int
    action: str


@dataclass(frozen=True)
class Outcome:
    """A press judged against the alert's status: the status to set (None: nothing changes) and what to say."""

    new_status: AlertStatus | None
    result: str  # acknowledged, resolved, already_acknowledged, already_resolved


def callback_data(alert_id: int, action: str) -> str:
    """The callback_data of one button: `ack:12` or `res:12`."""
    return f"{action}:{alert_id}"


def parse_press(data: str | None) -> Press | None:
    """The press a button's callback_data names, or None for data no button of ours carries."""
    match = _DATA.fullmatch(data or "")
    return Press(int(match[2]), match[1]) if match else None


def buttons(alert_id: int, status: AlertStatus) -> list[tuple[str, str]]:
    """(label, callback_data) of the buttons an alert in `status` shows: OPEN both, ACK only Resolve, RESOLVED none."""
    actions = {AlertStatus.OPEN: (ACK, RESOLVE), AlertStatus.ACK: (RESOLVE,)}.get(status, ())
    return [(LABELS[action], callback_data(alert_id, action)) for action in actions]


def notice_buttons(alert_id: int, notice_type: AlertType, status: str | None) -> list[tuple[str, str]]:
    """The buttons a notice carries: an ERROR or WARNING those of its alert's status at send time; others none."""
    if notice_type not in (AlertType.ERROR, AlertType.WARNING):
        return []
    return buttons(alert_id, AlertStatus(status or AlertStatus.OPEN.value))


def decide_press(status: AlertStatus, action: str) -> Outcome:
    """What a valid press does to an alert in `status` (SPEC §4's transitions, §10)."""
    if status is AlertStatus.RESOLVED:
        return Outcome(None, "already_resolved")
    if action == RESOLVE:
        return Outcome(AlertStatus.RESOLVED, "resolved")
    if status is AlertStatus.ACK:
        return Outcome(None, "already_acknowledged")
    return Outcome(AlertStatus.ACK, "acknowledged")


def who_pressed(user_id: int, username: str | None) -> str:
    """acknowledged_by / resolved_by for a Telegram user: `telegram:@name`, or `telegram:<id>` without a username."""
    return f"telegram:@{username}" if username else f"telegram:{user_id}"


ANSWERS = {
    "ko": {"acknowledged": "확인 처리했습니다", "resolved": "해결 처리했습니다",
           "already_acknowledged": "이미 확인된 알림입니다", "already_resolved": "이미 해결된 알림입니다",
           "refused": "이 채팅으로 보낸 그 알림 메시지에서만 처리할 수 있습니다"},
    "en": {"acknowledged": "Acknowledged", "resolved": "Resolved",
           "already_acknowledged": "Already acknowledged", "already_resolved": "Already resolved",
           "refused": "Only this alert's own message in the chat it was sent to can change it"},
}
_ACTED = {
    "ko": {"acknowledged": "☑️ {who} 님이 확인함 ({at} UTC)",
           "resolved": "✔️ {who} 님이 해결함 ({at} UTC)"},
    "en": {"acknowledged": "☑️ Acknowledged by {who} at {at} UTC",
           "resolved": "✔️ Resolved by {who} at {at} UTC"},
}


def press_answer(result: str, language: str) -> str:
    """The short text answerCallbackQuery shows the person who pressed (`refused` for a press that does not count)."""
    return ANSWERS[language][result]


def acted_line(result: str, by: str, at: str, language: str) -> str:
    """The line added to the message after a press changed its alert: who (`@name` or the id) did what, and when."""
    who = by.removeprefix("telegram:")
    return _ACTED[language][result].format(who=who, at=at)
