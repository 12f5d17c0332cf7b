"""Group commit: the writes of concurrent requests of one process run in one SQLite transaction.

On SQLite one writer at a time holds the database (database.write_transaction's gate), so a
request's write waits its turn anyway; each turn also pays for a pooled connection, BEGIN
IMMEDIATE, the COMMIT and the hand-over of the gate between processes. Here a request queues its
work and the first thread to find no group running becomes the leader: it takes everything queued
so far, runs the jobs one after another in one transaction, in queue order, commits once and hands
each job its own result. The jobs see each other's writes as if each had committed in turn; a
busier process makes bigger groups, an idle one runs every job alone, at once.

If a job fails, the group's transaction rolls back and every job runs again alone, in its own
transaction, so one job's error is its own and the others are stored exactly once. A database
that stays locked past the gate's limit fails the whole group (every job would wait as long again).

Only for SQLite: PostgreSQL writers run side by side, each locking its own rows in one order, and
a group holding the rows of several requests at once could deadlock with another process's group.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar

from sqlalchemy import Connection, Engine

from backend.database import WRITE_LOCK_TIMEOUT_SECONDS, DatabaseBusyError, write_transaction

T = TypeVar("T")

MAX_GROUP = 64  # jobs per transaction: bounds the time the gate is held, and the work redone on an error


class _Job(Generic[T]):
    __slots__ = ("work", "result", "error", "finished")

    def __init__(self, work: Callable[[Connection], T]):
        self.work = work
        self.result: T | None = None
        self.error: BaseException | None = None
        self.finished = False

    def settle(self, result: T | None = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.finished = result, error, True

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result


class GroupCommit:
    """Runs `work(conn)` in a write transaction, sharing it with the work of concurrent callers on SQLite."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.grouped = engine.dialect.name == "sqlite"
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._leading = threading.Lock()  # held by the thread running a group

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a write transaction; its result once committed, or its error (nothing of it stored)."""
        if not self.grouped:
            with write_transaction(self.engine) as conn:
                return work(conn)
        job = _Job(work)
        with self._queue_lock:
            self._queue.append(job)
        # Whoever holds _leading runs every job queued before it took them, ours included or not:
        # once we hold it, our job is either finished or still queued (then we lead its group).
        if not self._leading.acquire(timeout=WRITE_LOCK_TIMEOUT_SECONDS):
            return self._withdraw(job)
        try:
            while not job.finished:
                with self._queue_lock:
                    group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                self._run_group(group)  # never empty: our own job is in the queue until it is finished
        finally:
            self._leading.release()
        return job.outcome()

    def _withdraw(self, job: _Job):
        """Waited too long for a turn: take the job back, or, if a leader has it, wait for it once more."""
        with self._queue_lock:
            if job in self._queue:
                self._queue.remove(job)
                raise DatabaseBusyError(WRITE_LOCK_TIMEOUT_SECONDS)
        if self._leading.acquire(timeout=WRITE_LOCK_TIMEOUT_SECONDS):
            self._leading.release()
        if not job.finished:  # it may still be committed: its event_uid makes the client's retry safe
            raise DatabaseBusyError(WRITE_LOCK_TIMEOUT_SECONDS)
        return job.outcome()

    def _run_group(self, group: list[_Job]) -> None:
        try:
            with write_transaction(self.engine) as conn:
                results = [job.work(conn) for job in group]
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
            for job, result in zip(group, results):
                job.settle(result)
        finally:  # a BaseException (the worker stopping) leaves no caller waiting on a job nobody runs
            for job in group:
                if not job.finished:
                    job.settle(error=RuntimeError("the backend stopped before this write was committed"))

    def _run_alone(self, job: _Job) -> None:
        try:
            with write_transaction(self.engine) as conn:
                result = job.work(conn)
        except Exception as exc:
            job.settle(error=exc)
        else:
            job.settle(result)
