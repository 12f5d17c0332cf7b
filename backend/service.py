"""Rules plus storage: each request's reads, decisions and writes in one transaction (SPEC §5)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine

from backend import store
from backend.errors import ApiError
from backend.database import write_transaction
from backend.messages import alert_message
from backend.rules import (ACTIVE_STATUSES, Action, AlertStatus, AlertType, TargetState, can_transition, decide,
                           decide_late, failures_in_a_row, is_failure, next_state)
from backend.validation import EventIn

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
    has_active_alert: bool
    last_check_at: str | None  # precise UTC time of the newest applied check
    last_event_id: int | None = None
    changed: bool = False


class AlertService:
    """Stores check results, applies the alert rules, and changes alert status."""

    def __init__(self, engine: Engine, failure_threshold: int, channels: list[str]):
        self.engine = engine
        self.failure_threshold = failure_threshold
        self.channels = channels  # every alert change queues one delivery per channel
        # Writers take turns inside this process, as BEGIN IMMEDIATE makes them do across processes.
        self._write_lock = threading.Lock()

    def record_events(self, new_events: list[EventIn]) -> list[Recorded]:
        """Store a validated batch once per event_uid, all or nothing, applying the rules (SPEC §4, §5).

        Rules apply per target in check-time order; an event older than the newest one already
        applied for its target is stored as late and changes no alert.
        """
        received_at = store.now_text()
        results: list[Recorded | None] = [None] * len(new_events)
        with self._write_lock, write_transaction(self.engine) as conn:
            # Lock every target of the batch first, in one order, so two batches never deadlock;
            # the uid check comes after, so a resent event waits for its first copy to commit.
            targets = {url: self._load_target(conn, url) for url in sorted({e.target_url for e in new_events})}
            fresh = self._skip_stored(conn, new_events, results)
            for index in sorted(fresh, key=lambda i: new_events[i].checked_at):
                results[index] = self._record_one(conn, new_events[index], targets, received_at)
            for url, target in targets.items():
                if target.changed:
                    store.save_target(conn, {"target_url": url, "failures_in_a_row": target.failures_in_a_row,
                                             "last_check_at": target.last_check_at,
                                             "last_event_id": target.last_event_id})
            for index, result in enumerate(results):
                if isinstance(result, int):  # a repeat of an earlier item of this same batch
                    results[index] = Recorded(results[result].event_id, None, duplicate=True)
        return results

    def _skip_stored(self, conn, new_events: list[EventIn], results: list) -> list[int]:
        """Fill in results for events stored before (by event_uid); return the indexes still to store."""
        uids = [e.event_uid for e in new_events if e.event_uid]
        stored = store.events_by_uid(conn, uids) if uids else {}
        first_seen: dict[str, int] = {}
        fresh = []
        for index, new in enumerate(new_events):
            if new.event_uid in stored:
                results[index] = Recorded(stored[new.event_uid], None, duplicate=True)
            elif new.event_uid in first_seen:
                results[index] = first_seen[new.event_uid]  # resolved once the first one has an id
            else:
                if new.event_uid:
                    first_seen[new.event_uid] = index
                fresh.append(index)
        if stored:
            log.info("%d event(s) were already stored (same event_uid): not stored again", len(stored))
        return fresh

    def _record_one(self, conn, new: EventIn, targets: dict[str, _Target], received_at: str) -> Recorded:
        """Store one event and apply the rules to it unless it is late."""
        url = new.target_url
        target = targets[url]
        checked_at = store.precise_text(new.checked_at)
        is_late = target.last_check_at is not None and checked_at < target.last_check_at
        row = _event_row(new, received_at, is_late, checked_at)
        event_id = store.insert_event(conn, row)
        failed = is_failure(new.is_success, new.status_code)
        if is_late:
            return self._record_late(conn, target, event_id, row, failed)
        state = TargetState(target.failures_in_a_row, target.has_active_alert)
        action = decide(state, failed, self.failure_threshold)
        if failed and target.has_active_alert:
            log.info("check of %s at %s failed again: alert already active, no new alert (dedup)",
                     url, row["timestamp"])
        alert = self._apply(conn, action, event_id, row)
        after = next_state(state, failed, action)
        target.failures_in_a_row, target.has_active_alert = after.failures_in_a_row, after.has_active_alert
        target.last_check_at, target.last_event_id, target.changed = checked_at, event_id, True
        return Recorded(event_id, alert)

    def _record_late(self, conn, target: _Target, event_id: int, row: dict, failed: bool) -> Recorded:
        """A check older than the newest applied one: recount the run of failures in check-time order."""
        # Counting one past the threshold is enough: the rules only ask "reached it or not".
        target.failures_in_a_row = failures_in_a_row(
            store.recent_failures(conn, row["target_url"], self.failure_threshold + 1))
        target.changed = True
        action = decide_late(target.has_active_alert, failed, target.failures_in_a_row, self.failure_threshold)
        log.info("check of %s at %s arrived after a newer one: %d failure(s) in a row in check-time order%s",
                 row["target_url"], row["timestamp"], target.failures_in_a_row,
                 "; it completes an outage" if action is Action.OPEN_ALERT else "")
        alert = self._apply(conn, action, event_id, row)
        if action is Action.OPEN_ALERT:
            target.has_active_alert = True
        return Recorded(event_id, alert)

    def _load_target(self, conn, url: str) -> _Target:
        saved = store.lock_target(conn, url)
        has_active = store.active_alert_id(conn, url) is not None
        return _Target(saved["failures_in_a_row"], has_active, saved["last_check_at"], saved["last_event_id"])

    def _apply(self, conn, action: Action, event_id: int, event: dict) -> dict | None:
        """Carry out a rule decision: change the alert and queue its notices, in this transaction."""
        if action is Action.NOTHING:
            return None
        now = store.now_text()
        if action is Action.OPEN_ALERT:
            alert_id = store.insert_alert(conn, {
                "event_id": event_id, "target_url": event["target_url"], "alert_type": AlertType.ERROR.value,
                "status": AlertStatus.OPEN.value, "created_at": now,
                "message": alert_message(event["status_code"], event["error_message"]),
            })
            notice_type = AlertType.ERROR
        else:
            alert_id = store.active_alert_id(conn, event["target_url"])
            store.set_alert_status(conn, alert_id, ACTIVE_STATUSES, {
                "status": AlertStatus.RESOLVED.value, "resolved_at": now, "resolved_event_id": event_id,
            })
            notice_type = AlertType.RECOVERY
        due = store.precise_text(datetime.now(timezone.utc))
        store.insert_deliveries(conn, [
            {"alert_id": alert_id, "event_id": event_id, "channel": channel, "notice_type": notice_type.value,
             "status": "PENDING", "attempts": 0, "next_attempt_at": due, "created_at": now}
            for channel in self.channels])
        log.warning("alert %d %s for %s (check at %s)", alert_id,
                    "opened" if notice_type is AlertType.ERROR else "resolved by recovery",
                    event["target_url"], event["timestamp"])
        return store.get_alert(conn, alert_id)

    def change_alert_status(self, alert_id: int, requested: AlertStatus) -> dict:
        """Acknowledge or resolve an alert by hand (SPEC §4 PATCH); raise ApiError 404/409."""
        with self._write_lock, write_transaction(self.engine) as conn:
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
                values["acknowledged_at"] = store.now_text()
            else:
                values["resolved_at"] = store.now_text()
            # Conditional on the status we read, so a concurrent change can never be overwritten.
            if not store.set_alert_status(conn, alert_id, (current.value,), values):
                raise ApiError(409, f"Alert {alert_id} changed while this request ran; read it and try again.")
            return store.get_alert(conn, alert_id)


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
    }
