"""A durable write-ahead spool: check results wait here, in SQLite, until the backend has them.

Every event is committed before anyone tries to send it, and deleted only once the backend has
acknowledged it, so a backend outage or a crash of the backend loses nothing; the file outlives the
process and is replayed by the next one. The spool is bounded: past `max_events` the oldest are
dropped, and every drop is counted and logged at ERROR.

Check threads do not commit one by one: they hand results to a `SpoolWriter`, whose one thread
commits whatever has queued up in one transaction (group commit), so one fsync covers many
results. A result is committed within a few milliseconds of its check (one commit of the previous
group at most); a clean stop (SIGTERM, SIGINT, the end of `--once`) commits the whole queue before
the process exits. Only a hard kill of the agent itself (`kill -9`, power loss) can lose the
results of those last few milliseconds, and what survives is always the oldest part, in order.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from common.logs import plural

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spooled_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids never come back, so id order is age
    event_uid TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL                     -- the event as JSON, exactly as it will be POSTed
)
"""


class SpoolInUse(Exception):
    """Another process holds the spool's lock."""


# The open lock files: the kernel drops a flock when its file closes, so they stay open until
# the process exits.
_held_locks: list = []


def lock_spool(path: Path) -> None:
    """Lock the spool at `path` for the rest of the process, without waiting; SpoolInUse when another has it.

    The lock is a `flock` on a side file (`<spool>.lock`, holding the holder's PID), so it never
    touches SQLite's own locks and dies with its process, even a `kill -9`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path.with_name(path.name + ".lock"), "a+", encoding="ascii")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise SpoolInUse(f"the spool {path} is in use by another agent (pid {holder or 'unknown'}); "
                         f"stop that agent, or set AGENT_SPOOL_FILE to give this one a spool of its own") from None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held_locks.append(handle)


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
        self.add_many([event])

    def add_many(self, events: Iterable[dict]) -> int:
        """Store events in one transaction (one fsync), in this order; return how many were new."""
        rows = [(event["event_uid"], json.dumps(event, separators=(",", ":"))) for event in events]
        if not rows:
            return 0
        with self._lock, self._transaction():
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO spooled_events (event_uid, body) VALUES (?, ?)", rows)
            inserted = self._db.total_changes - before
            self._count += inserted
            dropped = self._drop_oldest_over_bound()
        if dropped:
            log.error("spool full: dropped %s (%d dropped since start)", plural(dropped, "oldest result"),
                      self.dropped_since_start)
        return inserted

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


class SpoolWriter:
    """Group commit: `put` queues an event in memory; one thread commits the queue in one transaction.

    While one group is being committed (its fsync), the next one gathers, so under load each commit
    carries many results, and at low rates each result is committed on its own, at once. Events are
    committed in the order they were put. `flush` waits until everything put so far is committed;
    `close` flushes and stops the thread. A failed commit is logged and retried after a pause; while
    commits fail, the queue is held to the spool's bound (`max_events`), dropping its oldest.
    """

    RETRY_SECONDS = 1.0

    def __init__(self, spool: Spool, on_commit: Callable[[], object] | None = None):
        self.spool = spool
        self.on_commit = on_commit  # called after each commit, e.g. to wake the sender
        self.commits = 0
        self._queue: deque[dict] = deque()
        self._put_count = 0   # events ever put
        self._done_count = 0  # events ever settled: committed, or dropped while commits failed
        self._cond = threading.Condition(threading.Lock())
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="spool-writer", daemon=True)
        self._thread.start()

    def put(self, event: dict) -> None:
        with self._cond:
            self._queue.append(event)
            self._put_count += 1
            if len(self._queue) == 1:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event put before this call is settled; False if `timeout` passed first."""
        with self._cond:
            target = self._put_count
            self._cond.wait_for(lambda: self._done_count >= target or not self._thread.is_alive(), timeout)
            return self._done_count >= target

    def close(self, timeout: float | None = None) -> bool:
        """Commit what is queued, then stop the thread; True when nothing was left uncommitted."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        with self._cond:
            left = len(self._queue)
        if left:
            log.error("spool writer stopped with %s not committed, lost", plural(left, "result"))
        return left == 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closing)
                if not self._queue:
                    return  # closing, and everything is committed
                group = list(self._queue)  # only this thread removes from the queue
            try:
                self.spool.add_many(group)
            except Exception:  # sqlite3 errors, a full disk: keep the events and try again
                log.exception("spool: committing %s failed, retrying in %gs", plural(len(group), "result"),
                              self.RETRY_SECONDS)
                with self._cond:
                    if self._closing:
                        return  # close() reports what is left
                    self._cond.wait(self.RETRY_SECONDS)
                    self._trim_over_bound()
                continue
            with self._cond:
                for _ in group:
                    self._queue.popleft()
                self._done_count += len(group)
                self.commits += 1
                self._cond.notify_all()
            if self.on_commit is not None:
                self.on_commit()

    def _trim_over_bound(self) -> None:
        excess = len(self._queue) - self.spool.max_events
        if excess > 0:
            for _ in range(excess):
                self._queue.popleft()
            self._done_count += excess
            self.spool.dropped_since_start += excess
            log.error("spool unwritable: dropped %s (%d dropped since start)",
                      plural(excess, "oldest queued result"), self.spool.dropped_since_start)
