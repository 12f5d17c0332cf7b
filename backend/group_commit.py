"""Group commit: the writes of concurrent requests of one process, done together in one SQLite transaction.

On SQLite one writer at a time holds the database (database.write_transaction's gate), so a
request's write waits its turn anyway; each turn also pays for a pooled connection, BEGIN
IMMEDIATE, its own reads of shared state, the COMMIT and the hand-over of the gate between
processes. Here a request queues its payload and the first thread to find no group running
becomes the leader: it takes everything queued so far (up to `max_size`), hands the lot to
`run_group` in one transaction, commits once and gives each caller its own result. A busier
process makes bigger groups; an idle one runs every payload alone, at once.

If the group fails, its transaction rolls back and every payload runs again alone, in its own
transaction, so one payload's error is its own and the others are stored exactly once. A database
that stays locked past the gate's limit fails the whole group (each would wait as long again).

Only for SQLite: PostgreSQL writers run side by side, each locking its own rows in one order, and
a group holding the rows of several requests at once could deadlock with another process's group.
There every payload runs alone.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

from sqlalchemy import Connection, Engine

from backend.database import WRITE_LOCK_TIMEOUT_SECONDS, DatabaseBusyError, write_transaction

P = TypeVar("P")
R = TypeVar("R")


class _Job(Generic[P, R]):
    __slots__ = ("payload", "result", "error", "finished")

    def __init__(self, payload: P):
        self.payload = payload
        self.result: R | None = None
        self.error: BaseException | None = None
        self.finished = False

    def settle(self, result: R | None = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.finished = result, error, True

    def outcome(self) -> R:
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommit(Generic[P, R]):
    """`run(payload)`: `run_group(conn, payloads)` in a write transaction, with concurrent callers' payloads on SQLite.

    `run_group` returns one result per payload, in order. `size(payload)` weighs a payload (one
    by default); a group holds payloads up to `max_size` in all (at least one), which bounds how
    long the gate is held and how much is redone after an error.
    """

    def __init__(self, engine: Engine, run_group: Callable[[Connection, list[P]], list[R]],
                 size: Callable[[P], int] = lambda payload: 1, max_size: int = 64):
        self.engine = engine
        self.run_group = run_group
        self.size, self.max_size = size, max_size
        self.grouped = engine.dialect.name == "sqlite"
        self._queue: list[_Job[P, R]] = []
        self._queue_lock = threading.Lock()
        self._leading = threading.Lock()  # held by the thread running a group

    def run(self, payload: P) -> R:
        """Write `payload`; its result once committed, or its error (nothing of it stored)."""
        if not self.grouped:
            return self._write_alone(payload)
        job = _Job(payload)
        with self._queue_lock:
            self._queue.append(job)
        # Whoever holds _leading runs every job queued before it took them, ours included or not:
        # once we hold it, our job is either finished or still queued (then we lead its group).
        if not self._leading.acquire(timeout=WRITE_LOCK_TIMEOUT_SECONDS):
            return self._withdraw(job)
        try:
            while not job.finished:
                self._run_group(self._take())  # never empty: our own job is queued until it is finished
        finally:
            self._leading.release()
        return job.outcome()

    def _take(self) -> list[_Job[P, R]]:
        with self._queue_lock:
            count, total = 0, 0
            for job in self._queue:
                total += self.size(job.payload)
                if count and total > self.max_size:
                    break
                count += 1
            group, self._queue = self._queue[:count], self._queue[count:]
        return group

    def _withdraw(self, job: _Job[P, R]) -> R:
        """Waited too long for a turn: take the job back, or, if a leader has it, wait for it once more."""
        with self._queue_lock:
            if job in self._queue:
                self._queue.remove(job)
                raise DatabaseBusyError(WRITE_LOCK_TIMEOUT_SECONDS)
        if self._leading.acquire(timeout=WRITE_LOCK_TIMEOUT_SECONDS):
            self._leading.release()
        if not job.finished:  # it may still be committed: an event_uid makes the client's retry safe
            raise DatabaseBusyError(WRITE_LOCK_TIMEOUT_SECONDS)
        return job.outcome()

    def _run_group(self, group: list[_Job[P, R]]) -> None:
        try:
            with write_transaction(self.engine) as conn:
                results = self.run_group(conn, [job.payload for job in group])
        except DatabaseBusyError as exc:
            for job in group:
                job.settle(error=exc)
        except Exception as exc:
            if len(group) == 1:
                group[0].settle(error=exc)
            else:
                for job in group:  # rolled back: each alone, so only a failing one fails
                    self._run_alone(job)
        else:
            for job, result in zip(group, results, strict=True):
                job.settle(result)
        finally:  # a BaseException (the worker stopping) leaves no caller waiting on a job nobody runs
            for job in group:
                if not job.finished:
                    job.settle(error=RuntimeError("the backend stopped before this write was committed"))

    def _run_alone(self, job: _Job[P, R]) -> None:
        try:
            result = self._write_alone(job.payload)
        except Exception as exc:
            job.settle(error=exc)
        else:
            job.settle(result)

    def _write_alone(self, payload: P) -> R:
        with write_transaction(self.engine) as conn:
            [result] = self.run_group(conn, [payload])
        return result
