"""The deadline timer (SPEC §8 "no results is an outage", §9 push targets): a failed event for each silent target.

One backend process at a time (the holder of the `deadlines` lease) looks every second for file
targets silent past their deadline (backend/deadline_rules.py) and stores one failed event for each, with
the rules applied as to any other event: its ERROR opens at once, and the target's next result
resolves it. Nothing is held only in memory, so restarts and takeovers neither miss nor double one:

- Silence is measured on the backend's clock, from when the target's last result was received
  (targets.last_received_at), so an agent whose clock is off is neither silent nor late.
- A missed deadline's event has event_uid uuid5(name, deadline) and becomes the target's newest
  result, so the next deadline counts from it. Two processes that both see it due store it once.
- The timer knows the backend was down from a heartbeat: every backend process's timer, lease
  holder or not, writes its time to `deadline_timer.beat_at` on each tick. A beat older than
  GAP_SECONDS means no process ran for that long (a freshly started process, which knows it was
  not running, asks only STARTUP_GAP_SECONDS): every process was stopped. The pass then records
  `resumed_at` = now, and from then on no deadline is earlier than resumed_at + the target's
  allowance (push: its grace; http and tcp: AGENT_REFRESH_SECONDS plus one window, for agents to
  find the backend again and flush their spool). Pings and results lost while the backend was
  down so raise no false alert, and a deadline that passed meanwhile is still noticed when that
  allowance is over, never skipped. A lease takeover is no gap (the new holder beat all along),
  nor is a pass that waits for the database shorter than GAP_SECONDS.
  Limits: a restart of every process within STARTUP_GAP_SECONDS, or a database that answers no
  process for longer than GAP_SECONDS, is misjudged (a ping lost in the first case can raise an
  ERROR; the second postpones deadlines by one allowance).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection

from backend import store
from backend.alert_timers import queue_due_timers
from backend.background import BackgroundLoop
from backend.database import write_transaction
from backend.leases import Lease
from backend.own_events import backend_event
from backend.service import AlertService
from backend.suppression import release_ended
from backend.deadline_rules import Watch, deadline_uid, due_at, missed_check_at, silence_message, watch_of
from backend.time_text import check_time_text, precise_text, utc_text

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
LEASE_SECONDS = 10.0  # renewed at a third of it; a non-holder asks every tick, so a handoff leaves no gap
# A heartbeat older than this: no backend process ran for a while. Beyond a lease and a few ticks,
# so that a pass stalled on the database (pings wait meanwhile, none is lost) is no outage.
GAP_SECONDS = LEASE_SECONDS + 3 * TICK_SECONDS
STARTUP_GAP_SECONDS = 3 * TICK_SECONDS  # a process's first beat: older than this, no other process is running


def _moment(text: str | None) -> datetime | None:
    """A stored UTC time (any of store's text forms) as an aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc) if text else None


class DeadlineTimer(BackgroundLoop):
    """A thread that stores missed deadlines as failed events, in the one process holding the lease."""

    what = "deadline timer pass"

    def __init__(self, service: AlertService, refresh_seconds: float, on_alert=lambda: None):
        super().__init__("deadline-timer", TICK_SECONDS, Lease(service.engine, "deadlines", LEASE_SECONDS))
        self.service = service
        self.engine = service.engine
        self.refresh_seconds = refresh_seconds
        self.on_alert = on_alert  # wakes the dispatcher: the notices are in the outbox
        self._gap = STARTUP_GAP_SECONDS  # GAP_SECONDS after this process's first beat
        self._watches: tuple[tuple, list[Watch]] = ((), [])  # (version of the loaded list, its watches)
        self.start()

    def run_once(self, now: datetime | None = None) -> int | None:
        """One pass if this process holds the lease: how many missed deadlines it stored, or None."""
        now = now or datetime.now(timezone.utc)
        resumed = self._beat(now)  # every process: whether any ran lately is what tells an outage
        if not self.holds(retry_seconds=TICK_SECONDS):  # a non-holder asks every tick: a handoff leaves no gap
            return None
        with self.engine.connect() as conn:  # the configured channels and this file version's named ones
            channels = [*self.service.channels, *self.service.rules.book(conn).named_channels]
        # The one timer loop (STYLE §8): notices held by silences that ended, reminders, escalations (SPEC §11).
        # Each duty runs whatever another raised; the first failure is raised after the deadlines, for pass_safely.
        failures, queued = [], 0
        for duty in (lambda: release_ended(self.engine, channels, now),
                     lambda: queue_due_timers(self.engine, self.service.rules, channels, now)):
            try:
                queued += duty()
            except Exception as exc:
                failures.append(exc)
        if queued:
            self.on_alert()
        stored = self._deadlines(now, resumed)
        if failures:
            raise failures[0]
        return stored

    def _deadlines(self, now: datetime, resumed: datetime | None) -> int:
        """Store the missed deadlines due at `now`; how many."""
        with self.engine.connect() as conn:
            watches = self._current_watches(conn)
            if not watches:
                return 0
            # Only a target last heard from longer ago than the shortest window can be due: SQL narrows it.
            cutoff = check_time_text(now - timedelta(seconds=min(w.window for w in watches)))
            quiet = store.quiet_targets(conn, cutoff)
        due = [w for w in watches if w.name in quiet and due_at(w, _moment(quiet[w.name]), resumed) <= now]
        return self._store_missed(due, now, resumed) if due else 0

    def _beat(self, now: datetime) -> datetime | None:
        """Write this process's heartbeat; return since when some backend process has run without a gap."""
        with write_transaction(self.engine) as conn:
            beat = store.timer_beat(conn)
            previous, resumed = _moment(beat["beat_at"]), beat["resumed_at"]
            if previous is None or (now - previous).total_seconds() > self._gap:
                resumed = precise_text(now)
                if previous is not None:
                    log.warning("deadline timer resumes after %.0f s with no backend process running: a "
                                "deadline missed meanwhile is reported after each target's allowance",
                                (now - previous).total_seconds())
            # max: a process whose pass began before another's beat never moves it back.
            store.save_timer_beat(conn, precise_text(max(now, previous or now)), resumed)
        self._gap = GAP_SECONDS
        return _moment(resumed)

    def _current_watches(self, conn: Connection) -> list[Watch]:
        """The watched targets of the loaded list, re-read only when the list was loaded again."""
        version = store.targets_file_version(conn)
        if version != self._watches[0]:
            self._watches = (version, [
                watch_of(row["name"], row["kind"], row["target_url"], json.loads(row["spec"]),
                         _moment(row["loaded_at"]), _moment(row["changed_at"]), self.refresh_seconds)
                for row in store.watched_targets(conn)])
        return self._watches[1]

    def _store_missed(self, due: list[Watch], now: datetime, resumed: datetime | None) -> int:
        """Store one failed event per target still due once its newest result is read again under lock."""
        stored = []
        with write_transaction(self.engine) as conn:
            last = store.last_results(conn, [w.name for w in due])
            made = []
            for watch in due:
                heard, checked = (_moment(text) for text in last[watch.name])
                deadline = due_at(watch, heard, resumed)
                if deadline <= now:  # a result may have come in since the first read
                    message = silence_message(watch, deadline, heard)
                    uid = deadline_uid(watch.name, check_time_text(deadline))
                    checked_at = missed_check_at(deadline, heard, checked)
                    made.append((watch, deadline, backend_event(watch.target_url, watch.name, checked_at, False,
                                                                message, uid)))
            recorded = self.service.record_in(conn, [event for _, _, event in made], at_once=True) if made else []
            stored = [made_one for made_one, result in zip(made, recorded) if not result.duplicate]
        for watch, deadline, event in stored:
            log.warning("%s target %s: %s (deadline %s)", watch.kind, watch.name, event.error_message,
                        utc_text(deadline))
        if any(result.alert for result in recorded):
            self.on_alert()
        return len(stored)
