"""Group commit: concurrent writes share one SQLite transaction, each stored once, each error its own."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from sqlalchemy import event as sql_event, text

from backend.group_commit import GroupCommit
from tests.backend_fixtures import engine  # noqa: F401 (a fixture)
from tests.support.group_commit import queue_in_turn

pytestmark = pytest.mark.timeout(60)


def _note(conn, k: int) -> int:
    """One write: a lease row named after k (any table the migrations made will do)."""
    conn.execute(text("INSERT INTO leases (name, holder, expires_at) VALUES (:n, 'test', '2099-01-01 00:00:00')"),
                 {"n": f"job-{k}"})
    return k * 10


def _stored(engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(text("SELECT name FROM leases WHERE name LIKE 'job-%'")))


def _writes(engine) -> GroupCommit:
    """Payloads that are the work itself: each runs on the group's connection, in queue order."""
    return GroupCommit(engine, lambda conn, works: [work(conn) for work in works])


def _transactions(engine) -> list[int]:
    started = []
    sql_event.listen(engine, "begin", lambda conn: started.append(1))
    return started


def _queue_behind_a_running_job(writes: GroupCommit, jobs: dict[int, object], pool: ThreadPoolExecutor):
    """Start job 0 and hold it inside its transaction until every other job has queued; return the futures."""
    inside, release = threading.Event(), threading.Event()

    def first(conn):
        inside.set()
        assert release.wait(10)
        return _note(conn, 0)

    futures = {0: pool.submit(writes.run, first)}
    assert inside.wait(10)
    futures.update(zip(jobs, queue_in_turn(writes, pool, [partial(writes.run, work) for work in jobs.values()])))
    release.set()
    return futures


def test_writes_that_queue_behind_a_running_one_commit_together_each_with_its_own_result(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL writers run side by side: no groups there")
    writes = _writes(engine)
    started = _transactions(engine)
    with ThreadPoolExecutor(8) as pool:
        futures = _queue_behind_a_running_job(writes, {k: (lambda conn, k=k: _note(conn, k)) for k in range(1, 8)},
                                              pool)
        results = {k: f.result(timeout=20) for k, f in futures.items()}
    assert results == {k: k * 10 for k in range(8)}
    assert len(started) == 2  # job 0 alone, then the seven that queued meanwhile, in one transaction
    assert _stored(engine) == sorted(f"job-{k}" for k in range(8))


def test_one_failing_write_in_a_group_fails_alone_and_the_others_are_stored_once(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL writers run side by side: no groups there")
    writes = _writes(engine)
    attempts: dict[int, int] = {}

    def job(k):
        def work(conn):
            attempts[k] = attempts.get(k, 0) + 1
            value = _note(conn, k)
            if k == 3:
                raise ValueError("job 3 refuses")
            return value
        return work

    with ThreadPoolExecutor(8) as pool:
        futures = _queue_behind_a_running_job(writes, {k: job(k) for k in range(1, 6)}, pool)
        with pytest.raises(ValueError, match="job 3 refuses"):
            futures[3].result(timeout=20)
        results = {k: f.result(timeout=20) for k, f in futures.items() if k != 3}
    assert results == {0: 0, 1: 10, 2: 20, 4: 40, 5: 50}
    assert _stored(engine) == ["job-0", "job-1", "job-2", "job-4", "job-5"]  # job 3's insert rolled back
    # The group up to job 3's error, rolled back; then each alone.
    assert attempts == {1: 2, 2: 2, 3: 2, 4: 1, 5: 1}


def test_a_write_alone_runs_at_once_in_its_own_transaction(engine):
    writes = _writes(engine)
    started = _transactions(engine)
    assert [writes.run(lambda conn, k=k: _note(conn, k)) for k in range(3)] == [0, 10, 20]
    assert len(started) == 3
    assert _stored(engine) == ["job-0", "job-1", "job-2"]


def test_a_leader_stopped_mid_group_leaves_no_caller_waiting(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL writers run side by side: no groups there")
    writes = _writes(engine)

    def stops(conn):
        raise KeyboardInterrupt  # what a worker's stop looks like to the thread leading a group

    with ThreadPoolExecutor(8) as pool:
        futures = _queue_behind_a_running_job(writes, {1: stops, 2: lambda conn: _note(conn, 2)}, pool)
        assert futures[0].result(timeout=20) == 0
        outcomes = sorted(type(futures[k].exception(timeout=20)).__name__ for k in (1, 2))
    # The thread that led the group sees the interrupt; the other is told its write was not committed.
    assert outcomes == ["KeyboardInterrupt", "RuntimeError"]
    assert _stored(engine) == ["job-0"]
