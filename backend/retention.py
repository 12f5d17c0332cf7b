"""Purge of old events (RETENTION_DAYS), so a long-running install never fills its disk.

Alerts, their notification logs and the events they point at are kept forever.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine

from backend import store
from backend.database import write_transaction
from common.logs import plural

log = logging.getLogger(__name__)

CHUNK = 5000  # rows per transaction, so ingest never waits long behind a purge


class RetentionPurger:
    """A background thread that deletes events older than `retention_days`, every `interval_seconds`."""

    def __init__(self, engine: Engine, retention_days: int, interval_seconds: float):
        self.engine = engine
        self.retention_days = retention_days
        self.interval_seconds = interval_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="retention")
        if retention_days > 0:  # 0 keeps every event
            self._thread.start()

    def purge_once(self, now: datetime | None = None) -> int:
        """Delete every expired event not used by an alert, in chunks; return how many went."""
        cutoff = store.utc_text((now or datetime.now(timezone.utc)) - timedelta(days=self.retention_days))
        total = 0
        while not self._stopping.is_set():
            with write_transaction(self.engine) as conn:
                deleted = store.purge_events(conn, cutoff, CHUNK)
            total += deleted
            if deleted < CHUNK:
                break
        if total:
            log.info("retention: purged %s checked before %s", plural(total, "event"), cutoff)
        return total

    def close(self) -> None:
        """Stop after the chunk in hand."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_seconds):
            try:
                self.purge_once()
            except Exception:  # a failed purge is retried next interval; ingest must not notice
                log.exception("retention purge failed")
