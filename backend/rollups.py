"""The roller: counts stored events into per-target, per-hour rollups, off the ingest path (SPEC §8 stats).

However many backend processes run, one rolls at a time: the holder of the `rollups` lease. It
reads events by id above a watermark in bounded chunks and writes each chunk's counts in one
transaction with the watermark's advance, conditional on the watermark it started from: a crash
rolls back both, and a second roller (a lease taken over from a slow holder) finds the watermark
moved and counts nothing twice. A late event (an old check time, a new id) lands in its own hour.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Engine

from backend import histogram, store
from backend.background import BackgroundLoop
from backend.database import write_transaction
from backend.leases import Lease
from common.logs import plural

log = logging.getLogger(__name__)

CHUNK = 2000  # events per transaction: the write lock is held for milliseconds (README, "Stats")
MIN_LEASE_SECONDS = 60.0
# On PostgreSQL an id is taken at INSERT and becomes visible at COMMIT, so a writer may commit id 7
# after id 8 is visible: the roller first waits for every inserting transaction in flight and reads
# max(id) (store.visible_events_horizon), and rolls no id above it. It waits at most this long, else
# tries at its next turn: new inserts queue behind it meanwhile, and it gives up before PostgreSQL's
# deadlock check (deadlock_timeout, 1 s) would have to step in. SQLite writers take turns, committing
# in id order. The stats route counts the unrolled events itself, so waiting costs no freshness.
HORIZON_LOCK_TIMEOUT_MS = 500


def hour_of(timestamp: str) -> str:
    """The rollup hour of a stored time (YYYY-MM-DD HH:MM:SS): YYYY-MM-DD HH:00:00."""
    return timestamp[:13] + ":00:00"


@dataclass
class HourCounts:
    """What a rollup row counts: checks, failures, response times (sum, count and histogram)."""

    checks: int = 0
    failures: int = 0
    response_ms_sum: int = 0
    response_ms_count: int = 0
    histogram: Counter = field(default_factory=Counter)

    def add_event(self, row) -> None:
        """Count one event (a row of store.events_after or store.events_of_target_after)."""
        self.checks += 1
        self.failures += row.failed  # ingest's verdict, stored (events.failed)
        if row.response_time_ms is not None:
            self.response_ms_sum += row.response_time_ms
            self.response_ms_count += 1
            self.histogram[histogram.bucket_of(row.response_time_ms)] += 1

    def add_stored(self, row: dict) -> None:
        """Add a stored rollup row's counts (a row of store.rollup_rows)."""
        self.checks += row["checks"]
        self.failures += row["failures"]
        self.response_ms_sum += row["response_ms_sum"]
        self.response_ms_count += row["response_ms_count"]
        histogram.decode(row["histogram"], self.histogram)

    def as_row(self, target: str, hour: str) -> dict:
        """The rollup row that stores these counts."""
        return {"target": target, "hour": hour, "checks": self.checks, "failures": self.failures,
                "response_ms_sum": self.response_ms_sum, "response_ms_count": self.response_ms_count,
                "histogram": histogram.encode(self.histogram)}


def count_events(rows) -> dict[tuple[str, str], HourCounts]:
    """The counts of these events by (target, hour of check time)."""
    counts: dict[tuple[str, str], HourCounts] = {}
    for row in rows:
        key = (row.key, hour_of(row.timestamp))
        if key not in counts:
            counts[key] = HourCounts()
        counts[key].add_event(row)
    return counts


class Roller(BackgroundLoop):
    """A background thread that rolls new events up every `interval_seconds`, while it holds the lease."""

    what = "rollups"  # the stats route counts unrolled events meanwhile

    def __init__(self, engine: Engine, interval_seconds: float, start: bool = True):
        super().__init__("rollups", interval_seconds,
                         Lease(engine, "rollups", max(2 * interval_seconds, MIN_LEASE_SECONDS)))
        self.engine = engine
        if start:
            self.start()

    def run_once(self) -> int | None:
        """Roll every committed event up if this process holds the lease; how many, or None when another holds it."""
        held_until = self.lease.take()
        if not held_until:
            return None
        total = 0
        while not self._stopping.is_set():
            rolled = self.roll_chunk()
            total += rolled
            if rolled < CHUNK:
                break
            if time.monotonic() > held_until - self.lease.seconds / 2:  # a long backlog: keep the turn
                held_until = self.lease.take()
                if not held_until:
                    break
        if total:
            # A line every interval of a quiet install says nothing; a backlog (an upgrade, a
            # catch-up after the database was away) is worth one.
            log.log(logging.INFO if total >= CHUNK else logging.DEBUG, "rollups: counted %s", plural(total, "event"))
        return total

    def roll_chunk(self) -> int:
        """Count the next chunk of events into rollups, in one transaction with the watermark; how many."""
        up_to = None  # SQLite: every stored id is committed
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                up_to = store.visible_events_horizon(conn, HORIZON_LOCK_TIMEOUT_MS)
            if up_to is None:
                log.info("rollups: an insert into events is still in flight after %d ms; rolling at the next turn",
                         HORIZON_LOCK_TIMEOUT_MS)
                return 0
        # Read and count outside the write lock; the transaction below only merges and writes.
        with self.engine.connect() as conn:
            watermark = store.rollup_watermark(conn)
            rows = store.events_after(conn, watermark, CHUNK, up_to)
        if not rows:
            return 0
        counts = count_events(rows)
        with write_transaction(self.engine) as conn:
            if not store.advance_rollup_watermark(conn, watermark, rows[-1].id):
                log.info("rollups: another process rolled events after %d meanwhile; nothing counted", watermark)
                return 0
            stored = store.rollup_rows(conn, list(counts))
            new_rows, changed_rows = [], []
            for key, hour_counts in counts.items():
                if key in stored:
                    hour_counts.add_stored(stored[key])
                (changed_rows if key in stored else new_rows).append(hour_counts.as_row(*key))
            store.save_rollups(conn, new_rows, changed_rows)
        return len(rows)
