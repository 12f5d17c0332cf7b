"""Storing one POST /events batch and applying the alert rules to it, in one transaction (SPEC §4, §5, §8, §9).

Each event belongs to a target key (its file target's name, else its URL: target_rules.TargetBook),
whose settings the rules take. The batch is judged per target in check-time order. Results in
order are decided in memory from each target's locked state and inserted together (one
multi-row INSERT); a late result (older than the newest applied one) first flushes what is
pending, since it must recount the target's runs from the stored events.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone

from sqlalchemy import Connection

from backend import metrics, store
from backend.after_commit import AfterCommit
from backend.alert_timer_rules import first_timers
from backend.channels import routed
from backend.messages import alert_message, warning_text
from backend.rules import (ACTIVE_STATUSES, Action, AlertStatus, AlertType, Check, RuleSettings, RuleState,
                           WarningReason, decide_late, failures_in_a_row, is_agent_verdict, is_failure, judge,
                           successes_in_a_row)
from backend.target_rules import Resolved, TargetBook, TargetRules
from backend.silences import QuietTimes
from backend.suppression import queue_deliveries
from backend.time_text import check_time_text, now_text, precise_text, utc_text
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

    state: RuleState             # as the rules see it, decisions still pending included
    active_alert_id: int | None  # the active alert as written so far (pending decisions apply at the flush)
    last_check_at: str | None    # the newest applied check, in the stored form (check_time_text)
    changed: bool = False


@dataclass
class _Pending:
    index: int          # position in the request
    row: dict           # the events row to insert
    action: Action      # what the rules decided for it
    key: str            # the target key
    settings: RuleSettings | None
    reason: WarningReason | None = None


@dataclass(frozen=True)
class Prepared:
    """What a request's events are, worked out before the write lock against one version of the targets file.

    Each event's target and settings, whether it failed, its row and what the rules look at; none
    of it depends on a target's state, so none of it needs the lock. Batch.record uses it if the
    version it reads under the lock is the same `book`, and works it out again if not.
    """

    book: TargetBook
    resolved: list[Resolved]
    checks: list[Check]
    rows: list[dict]  # the events rows, as not late (is_late 0)

    @classmethod
    def join(cls, parts: list[Prepared | None]) -> Prepared | None:
        """Several requests' in order (a group commit's), or None unless all were against one book."""
        if not parts or any(p is None or p.book is not parts[0].book for p in parts):
            return None
        return cls(parts[0].book, [r for p in parts for r in p.resolved], [c for p in parts for c in p.checks],
                   [row for p in parts for row in p.rows])


def prepare(new_events: list[EventIn], book: TargetBook, received_at: str) -> Prepared:
    """Each event's target, verdict and row, from the targets file version `book` (no database read)."""
    resolved, checks, rows = [], [], []
    for new in new_events:
        target = book.resolve(new.target, new.target_url)
        # Decided once, from the resolved target, and stored: the recount and the rollups read it.
        failed = is_failure(new.is_success, new.status_code, is_agent_verdict(target.in_file, new.target_url))
        cert_days_left = None
        if new.cert_expires_at is not None:
            cert_days_left = (new.cert_expiry - new.checked_at).total_seconds() / 86400
        resolved.append(target)
        checks.append(Check(failed, new.response_time_ms, cert_days_left))
        rows.append(_event_row(new, received_at, False, new.check_time, target.key if target.in_file else new.target,
                               failed))
    return Prepared(book, resolved, checks, rows)


class Batch:
    """One request's events, applied inside the caller's write transaction.

    `rules` is the process's cache of per-target settings (the backend's FAILURE_THRESHOLD among
    them). `at_once=True` makes every failure in it open an ERROR at once, whatever the target's
    failure_threshold (a push target's missed deadline or /ping/<token>/fail, SPEC §9).
    """

    def __init__(self, conn: Connection, channels: list[str], rules: TargetRules, at_once: bool = False,
                 after: AfterCommit | None = None):
        self.conn = conn
        # What the batch did, logged once the caller's transaction has committed (or at once).
        self.after = after if after is not None else AfterCommit(log, hold=False)
        self.channels = channels
        self.at_once = at_once
        self.rules = rules
        received = datetime.now(timezone.utc)
        self.received_at = utc_text(received)
        self.heard_at = check_time_text(received)  # targets.last_received_at: the deadline timer's clock
        self.pending: list[_Pending] = []
        self.targets: dict[str, _Target] = {}
        self.results: list[Recorded | int | None] = []
        self._quiet: QuietTimes | None = None

    def record(self, new_events: list[EventIn], prepared: Prepared | None = None) -> list[Recorded]:
        """Store the events once per event_uid and apply the rules; return one result per event.

        `prepared`: the events worked out before the lock (prepare); used if still of this file version.
        """
        self.results = [None] * len(new_events)
        book = self.rules.book(self.conn)
        self.channels = [*self.channels, *book.named_channels]  # this file version's named channels too
        if prepared is None or prepared.book is not book:
            prepared = prepare(new_events, book, self.received_at)
        resolved = prepared.resolved
        # Lock every target first, in one order, so two batches never deadlock; the uid check
        # comes after, so a resent event waits for its first copy to commit, then finds it.
        # A named target that is not in the file has no rules, so no state to lock (SPEC §8).
        self._lock_targets(sorted({r.key for r in resolved if r.settings is not None}))
        fresh = self._skip_stored(new_events)
        for index in sorted(fresh, key=lambda i: new_events[i].checked_at):
            self._judge(index, new_events[index], resolved[index], prepared.checks[index], prepared.rows[index])
        self._flush()
        self._save_targets()
        for index, result in enumerate(self.results):
            if isinstance(result, int):  # a repeat of an earlier item of this same batch
                self.results[index] = Recorded(self.results[result].event_id, None, duplicate=True)
        return self.results

    def _lock_targets(self, keys: list[str]) -> None:
        if not keys:
            return
        saved = store.lock_targets(self.conn, keys)
        active = store.active_alert_ids(self.conn, keys)
        for key in keys:
            alert_id, alert_type = active.get(key, (None, None))
            row = saved[key]
            state = RuleState(row["failures_in_a_row"], row["successes_in_a_row"], row["slow_in_a_row"],
                              row["clear_in_a_row"], AlertType(alert_type) if alert_id is not None else None)
            self.targets[key] = _Target(state, alert_id, row["last_check_at"])

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
            self.after.info("%s already stored (same event_uid): not stored again", plural(len(stored), "event"))
        return fresh

    def _judge(self, index: int, new: EventIn, resolved: Resolved, check: Check, row: dict) -> None:
        """Decide what one event means; in-order events wait in `pending` for one multi-row insert."""
        checked_at = row["checked_at"]
        settings = resolved.settings
        if settings is None:  # a target no longer in the file: stored, no rule runs (SPEC §8)
            self.pending.append(_Pending(index, row, Action.NOTHING, resolved.key, None))
            return
        target = self.targets[resolved.key]
        failed = check.failed
        if failed and self.at_once:
            settings = replace(settings, failure_threshold=1)
        if target.last_check_at is not None and checked_at < target.last_check_at:
            self._flush()  # the recount below must see every earlier event of this batch
            self._record_late(index, resolved.key, target, {**row, "is_late": 1}, failed, settings)
            return
        state = target.state
        decision = judge(state, check, settings, row.get("cert_expires_at"))
        if failed and state.active is AlertType.ERROR:
            self.after.info("check of %s at %s failed again: alert already active, no new alert (dedup)",
                            resolved.key, checked_at[:19])
        target.state = decision.state
        target.last_check_at, target.changed = checked_at, True
        self.pending.append(_Pending(index, row, decision.action, resolved.key, settings, decision.reason))

    def _flush(self) -> None:
        """Insert the pending events in one statement, then carry out their decisions in order."""
        if not self.pending:
            return
        ids = store.insert_events(self.conn, [p.row for p in self.pending])
        for pending, event_id in zip(self.pending, ids):
            alert = None
            if pending.action is not Action.NOTHING:
                alert = self._apply(pending, event_id, self.targets[pending.key])
            self.results[pending.index] = Recorded(event_id, alert)
        self.pending = []

    def _record_late(self, index: int, key: str, target: _Target, row: dict, failed: bool,
                     settings: RuleSettings) -> None:
        """A check older than the newest applied one: recount the runs in check-time order; WARNINGs stay."""
        [event_id] = store.insert_events(self.conn, [row])
        # Counting one past the larger threshold is enough: the rules only ask "reached it or not".
        limit = max(settings.failure_threshold, settings.success_threshold) + 1
        results = store.recent_failures(self.conn, row["target_url"], limit, key)
        failures = failures_in_a_row(results)
        target.state = replace(target.state, failures_in_a_row=failures, successes_in_a_row=successes_in_a_row(results))
        target.changed = True
        action = decide_late(target.state.active is not None, failed, failures, settings.failure_threshold)
        self.after.info("check of %s at %s arrived after a newer one: %s in a row in check-time order%s",
                        key, row["timestamp"], plural(failures, "failure"),
                        "; it completes an outage" if action is Action.OPEN_ALERT else "")
        alert = None
        if action is Action.OPEN_ALERT:
            target.state = replace(target.state, active=AlertType.ERROR)
            alert = self._apply(_Pending(index, row, action, key, settings), event_id, target)
        self.results[index] = Recorded(event_id, alert)

    def _apply(self, pending: _Pending, event_id: int, target: _Target) -> dict | None:
        """Carry out a rule decision: change the target's alert and queue its notices, in this transaction."""
        action, event, key = pending.action, pending.row, pending.key
        now = now_text()
        if action is Action.REPLACE_WARNING:
            # The outage takes the WARNING's place: resolved without a notice (SPEC §9), then an ERROR.
            if store.set_alert_status(self.conn, target.active_alert_id, ACTIVE_STATUSES, {
                    "status": AlertStatus.RESOLVED.value, "resolved_at": now, "resolved_event_id": event_id}):
                self.after.info("alert %d (WARNING) for %s resolved without a notice: an outage replaces it",
                                target.active_alert_id, key)
                self.after.then(metrics.alert_status_changed, AlertStatus.RESOLVED.value)
        if action in (Action.OPEN_ALERT, Action.REPLACE_WARNING, Action.OPEN_WARNING):
            notice_type = AlertType.WARNING if action is Action.OPEN_WARNING else AlertType.ERROR
            message = (warning_text(pending.reason, "en") if pending.reason is not None
                       else alert_message(event["status_code"], event["error_message"]))
            timers = first_timers(datetime.now(timezone.utc), pending.settings)  # reminder, escalation (§11)
            alert_id = store.insert_alert(self.conn, {
                "event_id": event_id, "target_url": event["target_url"], "target": key,
                "alert_type": notice_type.value, "status": AlertStatus.OPEN.value, "created_at": now,
                "message": message, "reason": _reason_json(pending.reason),
                "remind_at": timers.remind_at and precise_text(timers.remind_at),
                "escalate_at": timers.escalate_at and precise_text(timers.escalate_at),
            })
            target.active_alert_id = alert_id
            self.after.then(metrics.alert_opened, notice_type.value)
        else:
            alert_id, target.active_alert_id = target.active_alert_id, None
            # Conditional, and its row count decides: on PostgreSQL a PATCH may have resolved the
            # alert since this batch read it, and a manual resolve notifies nobody (README).
            if not store.set_alert_status(self.conn, alert_id, ACTIVE_STATUSES, {
                "status": AlertStatus.RESOLVED.value, "resolved_at": now, "resolved_event_id": event_id,
            }):
                self.after.info("alert %d for %s was resolved by hand meanwhile: no RECOVERY notice", alert_id, key)
                return None
            self.after.then(metrics.alert_status_changed, AlertStatus.RESOLVED.value)
            notice_type = AlertType.RECOVERY
        due = precise_text(datetime.now(timezone.utc))
        if self._quiet is None:  # read once per batch, when its first notice is due (SPEC §11 silences)
            self._quiet = QuietTimes(self.conn, datetime.now(timezone.utc))
        queue_deliveries(self.conn, key, [  # SUPPRESSED rows instead while the target is silenced (SPEC §11)
            {"alert_id": alert_id, "event_id": event_id, "channel": channel, "notice_type": notice_type.value,
             "status": "PENDING", "attempts": 0, "next_attempt_at": due, "created_at": now}
            for channel in routed(self.channels, pending.settings and pending.settings.channels)],
            self._quiet, self.after)
        what = "resolved by recovery" if notice_type is AlertType.RECOVERY else f"opened ({notice_type.value})"
        self.after.warning("alert %d %s for %s (check at %s)", alert_id, what, key, event["timestamp"])
        return store.get_alert(self.conn, alert_id)

    def _save_targets(self) -> None:
        store.save_targets(self.conn, [
            {"name": key, "failures_in_a_row": t.state.failures_in_a_row, "last_check_at": t.last_check_at,
             "successes_in_a_row": t.state.successes_in_a_row, "slow_in_a_row": t.state.slow_in_a_row,
             "clear_in_a_row": t.state.clear_in_a_row, "last_received_at": self.heard_at}
            for key, t in self.targets.items() if t.changed])


def _reason_json(reason: WarningReason | None) -> str | None:
    if reason is None:
        return None
    return json.dumps({k: v for k, v in asdict(reason).items() if v is not None}, separators=(",", ":"))


def _event_row(new: EventIn, received_at: str, is_late: bool, checked_at: str, target: str | None,
               failed: bool) -> dict:
    row = {
        "target_url": new.target_url,
        "status_code": new.status_code,
        "response_time_ms": new.response_time_ms,
        "timestamp": checked_at[:19],  # utc_text's form: the same moment cut to the second
        "is_success": 1 if new.is_success else 0,
        "error_message": new.error_message,
        "received_at": received_at,
        "event_uid": new.event_uid,
        "is_late": 1 if is_late else 0,
        "checked_at": checked_at,
        "target": target,
        "agent": new.agent,
        "failed": 1 if failed else 0,
    }
    if new.has_measurements:  # else left out: see store.insert_events
        row.update(dns_ms=new.dns_ms, connect_ms=new.connect_ms, tls_ms=new.tls_ms, first_byte_ms=new.first_byte_ms,
                   cert_expires_at=utc_text(new.cert_expiry) if new.cert_expires_at is not None else None)
    return row
