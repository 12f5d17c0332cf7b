"""Storing one POST /events batch and applying the alert rules to it, in one transaction (SPEC §4, §5).

The batch is judged per target in check-time order. Results in order are decided in memory from
each target's locked state and inserted together (one multi-row INSERT); a late result (older than
the newest applied one) first flushes what is pending, since it must recount the target's run of
failures from the stored events.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection

from backend import store
from backend.messages import alert_message
from backend.rules import (ACTIVE_STATUSES, Action, AlertStatus, AlertType, TargetState, decide, decide_late,
                           failures_in_a_row, is_agent_verdict, is_failure, next_state)
from backend.validation import EventIn
from common.logs import plural

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    """What storing one event did: its id, the alert it opened or resolved, if it was stored before."""

    event_id: int
    alert: dict | None
    duplicate: bool = False


@dataclass
class _Target:
    """A target's rule state while a batch is applied."""

    failures_in_a_row: int
    has_active_alert: bool       # as the rules see it, decisions still pending included
    active_alert_id: int | None  # the active alert as written so far (pending decisions apply at the flush)
    last_check_at: str | None    # the newest applied check, in the stored form (store.check_time_text)
    changed: bool = False


@dataclass
class _Pending:
    index: int          # position in the request
    row: dict           # the events row to insert
    action: Action      # what the rules decided for it


class Batch:
    """One request's events, applied inside the caller's write transaction."""

    def __init__(self, conn: Connection, threshold: int, channels: list[str]):
        self.conn = conn
        self.threshold = threshold
        self.channels = channels
        self.received_at = store.now_text()
        self.pending: list[_Pending] = []
        self.targets: dict[str, _Target] = {}
        self.results: list[Recorded | int | None] = []

    def record(self, new_events: list[EventIn]) -> list[Recorded]:
        """Store the events once per event_uid and apply the rules; return one result per event."""
        self.results = [None] * len(new_events)
        # Lock every target first, in one order, so two batches never deadlock; the uid check
        # comes after, so a resent event waits for its first copy to commit, then finds it.
        self._lock_targets(sorted({e.target_url for e in new_events}))
        fresh = self._skip_stored(new_events)
        for index in sorted(fresh, key=lambda i: new_events[i].checked_at):
            self._judge(index, new_events[index])
        self._flush()
        self._save_targets()
        for index, result in enumerate(self.results):
            if isinstance(result, int):  # a repeat of an earlier item of this same batch
                self.results[index] = Recorded(self.results[result].event_id, None, duplicate=True)
        return self.results

    def _lock_targets(self, urls: list[str]) -> None:
        saved = store.lock_targets(self.conn, urls)
        active = store.active_alert_ids(self.conn, urls)
        for url in urls:
            alert_id = active.get(url)
            self.targets[url] = _Target(saved[url]["failures_in_a_row"], alert_id is not None, alert_id,
                                        saved[url]["last_check_at"])

    def _skip_stored(self, new_events: list[EventIn]) -> list[int]:
        """Fill in results for events stored before (by event_uid); return the indexes still to store."""
        uids = [e.event_uid for e in new_events if e.event_uid]
        stored = store.events_by_uid(self.conn, uids) if uids else {}
        first_seen: dict[str, int] = {}
        fresh = []
        for index, new in enumerate(new_events):
            if new.event_uid in stored:
                self.results[index] = Recorded(stored[new.event_uid], None, duplicate=True)
            elif new.event_uid in first_seen:
                self.results[index] = first_seen[new.event_uid]  # resolved once the first one has an id
            else:
                if new.event_uid:
                    first_seen[new.event_uid] = index
                fresh.append(index)
        if stored:
            log.info("%s already stored (same event_uid): not stored again", plural(len(stored), "event"))
        return fresh

    def _judge(self, index: int, new: EventIn) -> None:
        """Decide what one event means; in-order events wait in `pending` for one multi-row insert."""
        target = self.targets[new.target_url]
        checked_at = store.check_time_text(new.checked_at)
        failed = is_failure(new.is_success, new.status_code, is_agent_verdict(new.target, new.target_url))
        if target.last_check_at is not None and checked_at < target.last_check_at:
            self._flush()  # the recount below must see every earlier event of this batch
            self._record_late(index, target, _event_row(new, self.received_at, True, checked_at), failed)
            return
        state = TargetState(target.failures_in_a_row, target.has_active_alert)
        action = decide(state, failed, self.threshold)
        if failed and state.has_active_alert:
            log.info("check of %s at %s failed again: alert already active, no new alert (dedup)",
                     new.target_url, store.utc_text(new.checked_at))
        after = next_state(state, failed, action)
        target.failures_in_a_row, target.has_active_alert = after.failures_in_a_row, after.has_active_alert
        target.last_check_at, target.changed = checked_at, True
        self.pending.append(_Pending(index, _event_row(new, self.received_at, False, checked_at), action))

    def _flush(self) -> None:
        """Insert the pending events in one statement, then carry out their decisions in order."""
        if not self.pending:
            return
        ids = store.insert_events(self.conn, [p.row for p in self.pending])
        for pending, event_id in zip(self.pending, ids):
            target = self.targets[pending.row["target_url"]]
            alert = self._apply(pending.action, event_id, pending.row, target)
            self.results[pending.index] = Recorded(event_id, alert)
        self.pending = []

    def _record_late(self, index: int, target: _Target, row: dict, failed: bool) -> None:
        """A check older than the newest applied one: recount the run of failures in check-time order."""
        [event_id] = store.insert_events(self.conn, [row])
        # Counting one past the threshold is enough: the rules only ask "reached it or not".
        target.failures_in_a_row = failures_in_a_row(
            store.recent_failures(self.conn, row["target_url"], self.threshold + 1))
        target.changed = True
        action = decide_late(target.has_active_alert, failed, target.failures_in_a_row, self.threshold)
        log.info("check of %s at %s arrived after a newer one: %s in a row in check-time order%s",
                 row["target_url"], row["timestamp"], plural(target.failures_in_a_row, "failure"),
                 "; it completes an outage" if action is Action.OPEN_ALERT else "")
        if action is Action.OPEN_ALERT:
            target.has_active_alert = True
        self.results[index] = Recorded(event_id, self._apply(action, event_id, row, target))

    def _apply(self, action: Action, event_id: int, event: dict, target: _Target) -> dict | None:
        """Carry out a rule decision: change the target's alert and queue its notices, in this transaction."""
        if action is Action.NOTHING:
            return None
        now = store.now_text()
        if action is Action.OPEN_ALERT:
            alert_id = store.insert_alert(self.conn, {
                "event_id": event_id, "target_url": event["target_url"], "alert_type": AlertType.ERROR.value,
                "status": AlertStatus.OPEN.value, "created_at": now,
                "message": alert_message(event["status_code"], event["error_message"]),
            })
            target.active_alert_id = alert_id
            notice_type = AlertType.ERROR
        else:
            alert_id, target.active_alert_id = target.active_alert_id, None
            # Conditional, and its row count decides: on PostgreSQL a PATCH may have resolved the
            # alert since this batch read it, and a manual resolve notifies nobody (README).
            if not store.set_alert_status(self.conn, alert_id, ACTIVE_STATUSES, {
                "status": AlertStatus.RESOLVED.value, "resolved_at": now, "resolved_event_id": event_id,
            }):
                log.info("alert %d for %s was resolved by hand meanwhile: no RECOVERY notice",
                         alert_id, event["target_url"])
                return None
            notice_type = AlertType.RECOVERY
        due = store.precise_text(datetime.now(timezone.utc))
        store.insert_deliveries(self.conn, [
            {"alert_id": alert_id, "event_id": event_id, "channel": channel, "notice_type": notice_type.value,
             "status": "PENDING", "attempts": 0, "next_attempt_at": due, "created_at": now}
            for channel in self.channels])
        log.warning("alert %d %s for %s (check at %s)", alert_id,
                    "opened" if notice_type is AlertType.ERROR else "resolved by recovery",
                    event["target_url"], event["timestamp"])
        return store.get_alert(self.conn, alert_id)

    def _save_targets(self) -> None:
        store.save_targets(self.conn, [
            {"target_url": url, "failures_in_a_row": t.failures_in_a_row, "last_check_at": t.last_check_at}
            for url, t in self.targets.items() if t.changed])


def _event_row(new: EventIn, received_at: str, is_late: bool, checked_at: str) -> dict:
    return {
        "target_url": new.target_url,
        "status_code": new.status_code,
        "response_time_ms": new.response_time_ms,
        "timestamp": store.utc_text(new.checked_at),
        "is_success": 1 if new.is_success else 0,
        "error_message": new.error_message,
        "received_at": received_at,
        "event_uid": new.event_uid,
        "is_late": 1 if is_late else 0,
        "checked_at": checked_at,
        "target": new.target,
        "agent": new.agent,
    }
