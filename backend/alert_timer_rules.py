"""When an open alert's reminder and escalation are due (SPEC §11), as pure functions: no database, no clock.

An alert gets both due times in the transaction that opens it. A reminder is due every
`reminder_minutes` while the alert is OPEN; an escalation once, `escalate_after_minutes` after it
opened. ACK or RESOLVED stops both (the timer pass claims only OPEN alerts). A reminder found due
late (the backend was down) is sent once, and the next one comes a full interval after it: missed
intervals are not made up one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.rules import AlertStatus, RuleSettings


@dataclass(frozen=True)
class Timers:
    """An alert's next reminder and its escalation, each None when there is none (any more)."""

    remind_at: datetime | None
    escalate_at: datetime | None


def first_timers(opened_at: datetime, settings: RuleSettings | None) -> Timers:
    """The due times a new alert starts with: one reminder interval and the escalation delay after it opened."""
    if settings is None:
        return Timers(None, None)
    remind = settings.reminder_minutes
    escalate = settings.escalate_after_minutes if settings.escalate_channels else None
    return Timers(opened_at + timedelta(minutes=remind) if remind else None,
                  opened_at + timedelta(minutes=escalate) if escalate else None)


def next_reminder_at(due: datetime, now: datetime, reminder_minutes: float) -> datetime:
    """After the reminder due at `due` is sent at `now`: the next one, on the same beat, or a full interval
    after `now` when the beat has already passed (the backend was down: one reminder, not one per interval)."""
    interval = timedelta(minutes=reminder_minutes)
    return due + interval if due + interval > now else now + interval


def reminder_due(status: str, remind_at: datetime | None, now: datetime) -> bool:
    """Whether a reminder goes out now: the alert is still OPEN (not ACK, not RESOLVED) and its time has come."""
    return status == AlertStatus.OPEN.value and remind_at is not None and remind_at <= now


def escalation_due(status: str, escalate_at: datetime | None, now: datetime) -> bool:
    """Whether the escalation goes out now: the alert is still OPEN (nobody acknowledged it) and it is time."""
    return status == AlertStatus.OPEN.value and escalate_at is not None and escalate_at <= now
