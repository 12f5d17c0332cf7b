"""Rules plus storage: each request's reads, decisions and writes in one transaction (SPEC §5)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from backend import store
from backend.errors import ApiError
from backend.messages import Notice, alert_message
from backend.rules import (ACTIVE_STATUSES, Action, AlertStatus, AlertType, TargetState, can_transition, decide,
                           is_failure, next_state)
from backend.validation import EventIn

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    """What storing one event did: its id and the alert it opened or resolved, if any."""

    event_id: int
    alert: dict | None


class AlertService:
    """Stores check results, applies the alert rules, and changes alert status."""

    def __init__(self, engine: Engine, failure_threshold: int):
        self.engine = engine
        self.failure_threshold = failure_threshold
        # SQLite has one writer at a time anyway; taking turns here keeps "read the target's
        # state, decide, write" atomic across this process's request threads.
        self._write_lock = threading.Lock()

    def record_events(self, new_events: list[EventIn]) -> tuple[list[Recorded], list[Notice]]:
        """Store a validated batch in order, all or nothing, and return what to notify (SPEC §4, §5)."""
        received_at = store.now_text()
        recorded: list[Recorded] = []
        notices: list[Notice] = []
        with self._write_lock, self.engine.begin() as conn:
            states: dict[str, TargetState] = {}
            for new in new_events:
                url = new.target_url
                if url not in states:
                    states[url] = self._target_state(conn, url)
                failed = is_failure(new.is_success, new.status_code)
                action = decide(states[url], failed, self.failure_threshold)
                if failed and states[url].has_active_alert:
                    log.info("check of %s at %s failed again: alert already active, no new alert (dedup)",
                             url, new.timestamp)
                row = _event_row(new, received_at)
                event_id = store.insert_event(conn, row)
                alert, notice = self._apply(conn, action, event_id, row)
                states[url] = next_state(states[url], failed, action)
                recorded.append(Recorded(event_id, alert))
                if notice:
                    notices.append(notice)
        for notice in notices:
            log.warning("alert %d %s for %s (check at %s)", notice.alert_id,
                        "opened" if notice.notice_type is AlertType.ERROR else "resolved by recovery",
                        notice.target_url, notice.occurred_at)
        return recorded, notices

    def _target_state(self, conn, target_url: str) -> TargetState:
        """Failures in a row (counted up to the threshold, all the rules need) and any active alert."""
        failures = 0
        for is_success, status_code in store.recent_results(conn, target_url, self.failure_threshold):
            if not is_failure(is_success, status_code):
                break
            failures += 1
        return TargetState(failures, store.active_alert_id(conn, target_url) is not None)

    def _apply(self, conn, action: Action, event_id: int, event: dict) -> tuple[dict | None, Notice | None]:
        """Carry out a rule decision for one stored event."""
        if action is Action.NOTHING:
            return None, None
        if action is Action.OPEN_ALERT:
            alert_id = store.insert_alert(conn, {
                "event_id": event_id, "target_url": event["target_url"], "alert_type": AlertType.ERROR.value,
                "status": AlertStatus.OPEN.value, "created_at": store.now_text(),
                "message": alert_message(event["status_code"], event["error_message"]),
            })
            notice_type = AlertType.ERROR
        else:
            alert_id = store.active_alert_id(conn, event["target_url"])
            store.set_alert_status(conn, alert_id, ACTIVE_STATUSES, {
                "status": AlertStatus.RESOLVED.value, "resolved_at": store.now_text(),
                "resolved_event_id": event_id,
            })
            notice_type = AlertType.RECOVERY
        notice = Notice(alert_id, notice_type, event["target_url"], event["status_code"],
                        event["response_time_ms"], event["error_message"], event["timestamp"])
        return store.get_alert(conn, alert_id), notice

    def change_alert_status(self, alert_id: int, requested: AlertStatus) -> dict:
        """Acknowledge or resolve an alert by hand (SPEC §4 PATCH); raise ApiError 404/409."""
        with self._write_lock, self.engine.begin() as conn:
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


def _event_row(new: EventIn, received_at: str) -> dict:
    return {
        "target_url": new.target_url,
        "status_code": new.status_code,
        "response_time_ms": new.response_time_ms,
        "timestamp": store.utc_text(datetime.fromisoformat(new.timestamp)),
        "is_success": 1 if new.is_success else 0,
        "error_message": new.error_message,
        "received_at": received_at,
    }
