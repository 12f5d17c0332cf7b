"""Rules plus storage: each request's reads, decisions and writes in one transaction (SPEC §5).

On SQLite that transaction is shared with the requests that queued meanwhile (group_commit.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter

from sqlalchemy import Connection, Engine

from backend import metrics, store
from backend.after_commit import AfterCommit
from backend.agent_seen import AgentSeenThrottle
from backend.errors import ApiError
from backend.database import write_transaction
from backend.group_commit import GroupCommit
from backend.ingest import Batch, Prepared, Recorded, prepare
from backend.ingest import log as ingest_log
from backend.rules import AlertStatus, can_transition
from backend.target_rules import TargetRules
from backend.time_text import now_text
from backend.validation import MAX_BATCH, EventIn

__all__ = ["AlertService", "Recorded"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Write:
    """One request's validated events, waiting for their turn to be stored."""

    events: list[EventIn]
    at_once: bool
    agents_due: list[str]  # agents whose last_event_at this process writes with them (AgentSeenThrottle.claim)
    prepared: Prepared | None = None  # the events worked out before the lock (ingest.prepare), if a book was known


class AlertService:
    """Stores check results, applies the alert rules, and changes alert status."""

    def __init__(self, engine: Engine, failure_threshold: int, channels: list[str],
                 reminder_minutes: float | None = None):
        self.engine = engine
        self.failure_threshold = failure_threshold
        self.channels = channels  # every alert change queues one delivery per channel the target takes
        # Per-target settings, cached per targets file version; REMINDER_MINUTES is the reminders' default.
        self.rules = TargetRules(failure_threshold, reminder_minutes)
        self.agent_seen = AgentSeenThrottle()
        self.writes = GroupCommit(engine, self._record_group, size=lambda write: len(write.events),
                                  max_size=MAX_BATCH)

    def record_events(self, new_events: list[EventIn], at_once: bool = False) -> list[Recorded]:
        """Store a validated batch once per event_uid, all or nothing, applying the rules (SPEC §4, §5, §9).

        `at_once=True`: each failure opens an ERROR at once, whatever the target's failure_threshold
        (the push deadline timer and /ping/<token>/fail).
        """
        # No statement for the agent unless this process has not written its time for a few seconds.
        due = self.agent_seen.claim({e.agent for e in new_events if e.agent is not None})
        # As much as can be worked out without the write lock, against the targets file version
        # this process read last; under the lock it is used if that version is still the one.
        book = self.rules.last_book()
        prepared = prepare(new_events, book, now_text()) if book is not None else None
        try:
            # With concurrent requests' events, in one transaction on SQLite (group_commit.py).
            recorded, told = self.writes.run(_Write(new_events, at_once, due, prepared))
        except BaseException:
            self.agent_seen.forget(due)
            raise
        if told is not None:
            told.emit()  # what the group did, logged and counted once committed
        return recorded

    def _record_group(self, conn: Connection,
                      writes: list[_Write]) -> list[tuple[list[Recorded], AfterCommit | None]]:
        """Several requests' events applied as one batch (one per run of equal `at_once`); each gets its slice.

        One batch reads the targets file version, the targets' state, the active alerts and the
        stored event_uids once for all, and inserts every event in one statement. Their check-time
        order is kept across requests, as within one. The group's log lines and counts go to the
        first request.
        """
        told = AfterCommit(ingest_log)  # each attempt its own: a rolled-back one logs and counts nothing
        recorded = []
        for at_once, same in groupby(writes, key=attrgetter("at_once")):
            same = list(same)
            results = Batch(conn, self.channels, self.rules, at_once=at_once, after=told).record(
                [event for write in same for event in write.events], Prepared.join([write.prepared for write in same]))
            start = 0
            for write in same:
                recorded.append(results[start:start + len(write.events)])
                start += len(write.events)
        now = now_text()
        for name in sorted(set().union(*(write.agents_due for write in writes))):
            store.agent_seen(conn, name, "last_event_at", now)
        return [(results, told if index == 0 else None) for index, results in enumerate(recorded)]

    def record_in(self, conn: Connection, new_events: list[EventIn], at_once: bool = False) -> list[Recorded]:
        """record_events inside the caller's write transaction (the deadline timer's, which read under it first)."""
        return Batch(conn, self.channels, self.rules, at_once=at_once).record(new_events)

    def agent_pulled(self, name: str) -> None:
        """Record that an agent asked for its target list (GET /agent/targets), once per pull."""
        with write_transaction(self.engine) as conn:
            store.agent_seen(conn, name, "last_pull_at", now_text())

    def change_alert_status(self, alert_id: int, requested: AlertStatus, by: str) -> dict:
        """Acknowledge or resolve an alert by hand (SPEC §4 PATCH), `by` whom (SPEC §10); raise ApiError 404/409."""
        with write_transaction(self.engine) as conn:
            return self.change_alert_status_in(conn, alert_id, requested, by)

    def change_alert_status_in(self, conn: Connection, alert_id: int, requested: AlertStatus, by: str) -> dict:
        """change_alert_status inside the caller's write transaction (a Telegram press, with its update offset)."""
        alert = store.get_alert(conn, alert_id)
        if alert is None:
            raise ApiError(404, f"Alert {alert_id} does not exist.")
        current = AlertStatus(alert["status"])
        if not can_transition(current, requested):
            raise ApiError(409, f"Alert {alert_id} is {current.value} and cannot become {requested.value}.",
                           details={"status": current.value})
        if current is requested:
            return alert  # ACK -> ACK: nothing to do
        values = {"status": requested.value}
        if requested is AlertStatus.ACK:
            values.update(acknowledged_at=now_text(), acknowledged_by=by)
        else:
            values.update(resolved_at=now_text(), resolved_by=by)
        # Conditional on the status we read, so a concurrent change can never be overwritten.
        if not store.set_alert_status(conn, alert_id, (current.value,), values):
            raise ApiError(409, f"Alert {alert_id} changed while this request ran; read it and try again.")
        metrics.alert_status_changed(requested.value)
        return store.get_alert(conn, alert_id)
