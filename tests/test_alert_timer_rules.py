"""When reminders and escalations are due (SPEC §11), on timelines: the pure rules of backend/alert_timer_rules.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backend.alert_timer_rules import escalation_due, first_timers, next_reminder_at, reminder_due
from backend.rules import RuleSettings

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def replay(settings: RuleSettings, statuses: dict[float, str], until: float, step: float = 1.0) -> dict:
    """Run a timer pass every `step` seconds from T0 (alert opened) to `until`, the alert's status changing
    at the given seconds; return the seconds at which a REMINDER and an ESCALATION went out."""
    timers = first_timers(T0, settings)
    remind_at, escalate_at = timers.remind_at, timers.escalate_at
    status, sent = "OPEN", {"REMINDER": [], "ESCALATION": []}
    second = 0.0
    while second <= until:
        status = statuses.get(second, status)
        now = at(second)
        if reminder_due(status, remind_at, now):
            sent["REMINDER"].append(second)
            remind_at = next_reminder_at(remind_at, now, settings.reminder_minutes)
        if escalation_due(status, escalate_at, now):
            sent["ESCALATION"].append(second)
            escalate_at = None
        second += step
    return sent


def test_a_reminder_every_interval_while_open_and_escalation_once():
    settings = RuleSettings(3, reminder_minutes=0.5, escalate_after_minutes=1.5, escalate_channels=("email",))
    sent = replay(settings, {}, until=200)
    assert sent["REMINDER"] == [30, 60, 90, 120, 150, 180]
    assert sent["ESCALATION"] == [90]


def test_ack_stops_both_reminders_and_escalation():
    settings = RuleSettings(3, reminder_minutes=0.5, escalate_after_minutes=1.5, escalate_channels=("email",))
    sent = replay(settings, {65: "ACK"}, until=200)
    assert sent == {"REMINDER": [30, 60], "ESCALATION": []}


def test_resolve_stops_both_reminders_and_escalation():
    settings = RuleSettings(3, reminder_minutes=0.5, escalate_after_minutes=1.5, escalate_channels=("email",))
    sent = replay(settings, {45: "RESOLVED"}, until=200)
    assert sent == {"REMINDER": [30], "ESCALATION": []}


def test_fractions_of_a_minute_are_seconds():
    settings = RuleSettings(3, reminder_minutes=0.05, escalate_after_minutes=0.1, escalate_channels=("webhook",))
    sent = replay(settings, {}, until=10, step=0.5)
    assert sent["REMINDER"] == [3.0, 6.0, 9.0]
    assert sent["ESCALATION"] == [6.0]


def test_a_pass_that_runs_late_keeps_the_beat():
    assert next_reminder_at(at(30), at(30.8), 0.5) == at(60)  # the usual tick latency: no drift


def test_reminders_missed_while_the_backend_was_down_go_out_once_and_the_next_one_interval_later():
    """Due at 30 s, the backend back at 125 s: one reminder then (not one for 30, 60, 90 and 120), the next at 155."""
    settings = RuleSettings(3, reminder_minutes=0.5)
    assert next_reminder_at(at(30), at(125), 0.5) == at(155)
    sent = replay(settings, {}, until=100, step=1)
    assert sent["REMINDER"] == [30, 60, 90]
    # The same timeline with passes only at 0 s and from 125 s on (down in between):
    remind_at, sent_at = first_timers(T0, settings).remind_at, []
    for second in [0, *range(125, 190)]:
        if reminder_due("OPEN", remind_at, at(second)):
            sent_at.append(second)
            remind_at = next_reminder_at(remind_at, at(second), 0.5)
    assert sent_at == [125, 155, 185]


@pytest.mark.parametrize("settings, expected", [
    (RuleSettings(3), (None, None)),  # REMINDER_MINUTES unset, no escalate: no timers
    (RuleSettings(3, reminder_minutes=2), (at(120), None)),
    (RuleSettings(3, escalate_after_minutes=15, escalate_channels=("email",)), (None, at(900))),
    (RuleSettings(3, escalate_after_minutes=15), (None, None)),  # no channel to escalate to
    (None, (None, None)),  # a named target not in the file: no rules, no timers
])
def test_the_due_times_an_alert_opens_with(settings, expected):
    timers = first_timers(T0, settings)
    assert (timers.remind_at, timers.escalate_at) == expected
