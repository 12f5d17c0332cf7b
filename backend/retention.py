"""Purge of old events and finished deliveries (RETENTION_DAYS), so a long-running install never fills its disk.

Alerts, their notification logs and the events they point at are kept forever; the stats rollups
for ROLLUP_MIN_DAYS or RETENTION_DAYS, whichever is longer, so a 30-day window still works when
events are kept for 7. However many backend processes run, one purges at a time: the one holding
the `retention` lease.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine

from backend import store
from backend.background import BackgroundLoop
from backend.database import write_transaction
from backend.leases import Lease
from backend.time_text import utc_text
from common.logs import plural

log = logging.getLogger(__name__)

CHUNK = 5000  # rows per transaction, so ingest never waits long behind a purge
MIN_LEASE_SECONDS = 60.0  # a holder slowed down for a moment keeps its turn
ROLLUP_MIN_DAYS = 35  # the longest stats window (30 days) and then some


class RetentionPurger(BackgroundLoop):
    """A background thread that deletes rows older than `retention_days`, every `interval_seconds`."""

    what = "retention purge"

    def __init__(self, engine: Engine, retention_days: int, interval_seconds: float):
        # The lease is held from one run to the next (renewed each run), so the same process keeps
        # purging; if it dies, another takes over when the lease expires (at once on this machine).
        super().__init__("retention", interval_seconds,
                         Lease(engine, "retention", max(2 * interval_seconds, MIN_LEASE_SECONDS)))
        self.engine = engine
        self.retention_days = retention_days
        if retention_days > 0:  # 0 keeps every event
            self.start()

    def run_once(self, now: datetime | None = None) -> int | None:
        """Purge if this process holds the retention lease; the events purged, or None when another holds it."""
        if not self.lease.take():
            return None
        return self.purge_once(now)

    def purge_once(self, now: datetime | None = None) -> int:
        """Delete finished deliveries, expired events no alert or delivery uses, and old rollups; the events purged."""
        now = now or datetime.now(timezone.utc)
        cutoff = utc_text(now - timedelta(days=self.retention_days))
        deliveries = self._in_chunks(store.purge_deliveries, cutoff)
        total = self._in_chunks(store.purge_events, cutoff)
        if total or deliveries:
            log.info("retention: purged %s checked and %s finished before %s",
                     plural(total, "event"), plural(deliveries, "delivery", "deliveries"), cutoff)
        rollup_cutoff = utc_text(now - timedelta(days=max(self.retention_days, ROLLUP_MIN_DAYS)))
        hours = self._in_chunks(store.purge_rollups, rollup_cutoff)
        if hours:
            log.info("retention: purged %s before %s", plural(hours, "rollup row"), rollup_cutoff)
        return total

    def _in_chunks(self, purge, cutoff: str) -> int:
        total = 0
        while not self._stopping.is_set():
            with write_transaction(self.engine) as conn:
                deleted = purge(conn, cutoff, CHUNK)
            total += deleted
            if deleted < CHUNK:
                break
        return total
