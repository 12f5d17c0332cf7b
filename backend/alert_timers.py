"""Reminders and escalations (SPEC §11): the deadline timer's lease holder queues them when they come due.

The due times are columns on the alert (alerts.remind_at, alerts.escalate_at), set in the
transaction that opens it (backend/ingest.py, rules in backend/alert_timer_rules.py), or by the
reload that turns them on (back_fill). Each pass
reads the OPEN alerts with one due, then claims each with a conditional UPDATE (the alert still
OPEN, the due time still the one read) and, in the same transaction, queues the notice as
deliveries rows for the dispatcher, which retries and logs it like any other. So two processes,
a crash or a restart neither lose nor double one; an ACK or a resolve stops both, since only OPEN
alerts are claimed. A reminder that came due while every backend process was down goes out once
on return, and the next a full interval later.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from backend import store_alert_timers
from backend.alert_timer_rules import escalation_due, first_timers, next_reminder_at, reminder_due
from backend.channels import routed
from backend.database import write_transaction
from backend.rules import AlertType, RuleSettings
from backend.silences import silence_for
from backend.suppression import queue_deliveries
from backend.target_rules import TargetRules, rule_settings
from backend.time_text import precise_text, utc_text

log = logging.getLogger(__name__)

_failed_alerts: set[int] = set()  # alerts whose timers raised in this process: each said once


def _moment(text: str | None) -> datetime | None:
    """A stored UTC time as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc) if text else None


def _is_silenced(conn: Connection, target: str, now: datetime) -> bool:
    """Whether the target is silenced now: then its reminders write nothing (SPEC §11)."""
    return silence_for(conn, target, now) is not None


def queue_due_timers(engine: Engine, rules: TargetRules, channels: list[str], now: datetime) -> int:
    """Queue every due reminder and escalation at `now` (aware); return how many deliveries were queued."""
    now_text = precise_text(now)
    with engine.connect() as conn:
        due = store_alert_timers.due_alert_timers(conn, now_text)
        if not due:
            return 0
        book = rules.book(conn)
    queued = 0
    for alert in due:
        held = (book.paused or {}).get(alert["target"])  # paused: its settings, for the reminders' beat
        resolved = book.by_name.get(alert["target"])
        settings = held or (resolved.settings if resolved is not None else None) or book.defaults
        try:
            # One transaction per alert: it holds one alert row at a time, so it never deadlocks with ingest.
            with write_transaction(engine) as conn:
                queued += _remind(conn, alert, settings, channels, now, held is not None)
                queued += _escalate(conn, alert, settings, channels, now, held is not None)
        except SQLAlchemyError:
            raise  # the database's trouble, not this alert's: the timer loop says it once and tries again
        except Exception:  # one alert's bad row must not stop the reminders of every other
            if alert["id"] not in _failed_alerts:
                _failed_alerts.add(alert["id"])
                log.exception("alert %d for %s: its reminder or escalation failed; the pass goes on without it",
                              alert["id"], alert["target"])
    return queued


def _remind(conn: Connection, alert: dict, settings: RuleSettings, configured: list[str], now: datetime,
            paused: bool) -> int:
    """Claim the alert's due reminder and queue it on the target's channels; how many deliveries."""
    due = _moment(alert["remind_at"])
    if not reminder_due(alert["status"], due, now):
        return 0
    every = settings.reminder_minutes  # the settings now: a reload that turned reminders off ends them
    next_at = precise_text(next_reminder_at(due, now, every)) if every else None
    if not store_alert_timers.claim_reminder(conn, alert["id"], alert["remind_at"], next_at):
        return 0  # another process sent it, or the alert was acknowledged or resolved meanwhile
    # Paused or silenced: this one writes nothing, the next keeps its beat (SPEC §11).
    if every is None or paused or _is_silenced(conn, alert["target"], now):
        return 0
    return _queue(conn, alert, AlertType.REMINDER, routed(configured, settings.channels), now)


def _escalate(conn: Connection, alert: dict, settings: RuleSettings, configured: list[str], now: datetime,
              paused: bool) -> int:
    """Claim the alert's due escalation (once) and queue it on the escalation channels; how many deliveries."""
    if not escalation_due(alert["status"], _moment(alert["escalate_at"]), now):
        return 0
    if not store_alert_timers.claim_escalation(conn, alert["id"], alert["escalate_at"]):
        return 0
    if paused:
        # Consumed, not held: pausing is somebody's deliberate attention, which an escalation exists to find.
        log.info("alert %d for %s: escalation due while the target is paused, not sent", alert["id"], alert["target"])
        return 0
    if not settings.escalate_channels:
        return 0  # a reload took the target's escalate: away
    to = routed(configured, settings.escalate_channels)
    if not to:
        log.warning("alert %d for %s: escalation due, but none of its channels (%s) is configured", alert["id"],
                    alert["target"], ", ".join(settings.escalate_channels))
        return 0
    return _queue(conn, alert, AlertType.ESCALATION, to, now)


def _queue(conn: Connection, alert: dict, notice_type: AlertType, to: list[str], now: datetime) -> int:
    """One deliveries row per channel, describing the check that opened the alert."""
    created = utc_text(now)
    # While silenced: SUPPRESSED rows instead, an escalation's sent when the silence ends if still OPEN.
    queue_deliveries(conn, alert["target"], [
        {"alert_id": alert["id"], "event_id": alert["event_id"], "channel": channel,
         "notice_type": notice_type.value, "status": "PENDING", "attempts": 0,
         "next_attempt_at": precise_text(now), "created_at": created} for channel in to])
    log.info("alert %d for %s: %s queued (%s)", alert["id"], alert["target"], notice_type.value, ", ".join(to))
    return len(to)


def back_fill(conn: Connection, specs: list[dict], reminder_minutes: float | None) -> int:
    """Give OPEN alerts of the loaded targets the reminder and escalation their settings now ask for and they lack
    (a reload turned them on), as if set when each opened; inside the load's transaction. How many alerts."""
    by_name = {spec["name"]: spec for spec in specs}
    filled = 0
    for alert in store_alert_timers.open_alerts_without_timers(conn):
        spec = by_name.get(alert["target"])
        if spec is None:
            continue  # not a file target: its settings are the environment's, unchanged by a reload
        timers = first_timers(_moment(alert["created_at"]), rule_settings(spec, 1, reminder_minutes))
        remind_at = timers.remind_at if alert["remind_at"] is None else None
        escalate_at = timers.escalate_at if alert["escalate_at"] is None else None
        if remind_at or escalate_at:
            store_alert_timers.fill_timers(conn, alert["id"], remind_at and precise_text(remind_at),
                                           escalate_at and precise_text(escalate_at))
            filled += 1
    return filled
