"""A durable write-ahead spool: check results wait here, in SQLite, until the backend has them.

Every event is inserted before anyone tries to send it, and deleted only once the backend has
acknowledged it, so a crash or a backend outage loses nothing; the file outlives the process and
is replayed by the next one. The spool is bounded: past `max_events` the oldest are dropped, and
every drop is counted and logged at ERROR.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spooled_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never come back, so id order is age
    event_uid TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL                     -- the event as JSON, exactly as it will be POSTed
)
"""


@dataclass(frozen=True)
class SpooledEvent:
    id: int
    event: dict

    @property
    def event_uid(self) -> str:
        return self.event["event_uid"]


class Spool:
    """Events not yet acknowledged by the backend, oldest first; safe to share between threads."""

    def __init__(self, path: Path, max_events: int):
        self.path = Path(path)
        self.max_events = max_events
        self.dropped_since_start = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection behind one lock: check threads insert while the sender thread reads and
        # deletes, and every statement is short, so serialising them costs nothing noticeable.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=10, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit that returned survives a power cut too, not only a crash of the agent.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._count = self._db.execute("SELECT count(*) FROM spooled_events").fetchone()[0]

    def add(self, event: dict) -> None:
        """Store one event (it must carry its `event_uid`); a uid already spooled is ignored."""
        body = json.dumps(event, separators=(",", ":"))
        with self._lock, self._transaction():
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO spooled_events (event_uid, body) VALUES (?, ?)",
                (event["event_uid"], body)).rowcount
            self._count += inserted
            dropped = self._drop_oldest_over_bound()
        if dropped:
            log.error("spool full: dropped %d oldest events (%d dropped since start)", dropped,
                      self.dropped_since_start)

    def peek(self, limit: int) -> list[SpooledEvent]:
        """Up to `limit` events, oldest first, without removing them."""
        with self._lock:
            rows = self._db.execute("SELECT id, body FROM spooled_events ORDER BY id LIMIT ?",
                                    (limit,)).fetchall()
        return [SpooledEvent(row_id, json.loads(body)) for row_id, body in rows]

    def delete(self, ids: list[int]) -> int:
        """Remove the events with these ids (acknowledged or invalid); return how many were here."""
        if not ids:
            return 0
        with self._lock, self._transaction():
            deleted = 0
            for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
                chunk = ids[start:start + 500]
                deleted += self._db.execute(
                    f"DELETE FROM spooled_events WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk).rowcount
            self._count -= deleted
        return deleted

    def __len__(self) -> int:
        with self._lock:
            return self._count

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _drop_oldest_over_bound(self) -> int:
        excess = self._count - self.max_events
        if excess <= 0:
            return 0
        dropped = self._db.execute(
            "DELETE FROM spooled_events WHERE id IN "
            "(SELECT id FROM spooled_events ORDER BY id LIMIT ?)", (excess,)).rowcount
        self._count -= dropped
        self.dropped_since_start += dropped
        return dropped

    def _transaction(self):
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self):
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False
