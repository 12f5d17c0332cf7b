"""PostgreSQL row locks are taken in one order by ingest, the deadline timer and a reload: no deadlock (40P01)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import event as sql_event
from sqlalchemy import text

from backend import store
from tests.backend_fixtures import engine  # noqa: F401 (a fixture)
from tests.support.databases import IS_POSTGRES

on_postgres = pytest.mark.skipif(not IS_POSTGRES, reason="row locks are PostgreSQL's; SQLite writers take turns")


def test_the_rule_state_is_locked_after_sorting_by_code_point():
    """PostgreSQL locks in the order it reads rows: the plan's, unless the statement sorts them first."""
    assert store._LOCK_SORTED == ' ORDER BY name COLLATE "C" FOR UPDATE'
    assert store._SHARE_TARGETS_FILE[False].endswith("FOR SHARE")



def _statements(engine) -> tuple[list[tuple[str, object]], callable]:
    seen: list[tuple[str, object]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        seen.append((" ".join(statement.split()), parameters))

    sql_event.listen(engine, "before_cursor_execute", remember)
    return seen, lambda: sql_event.remove(engine, "before_cursor_execute", remember)


@on_postgres
def test_missing_rows_are_made_before_any_is_locked_and_both_steps_go_in_sorted_order(engine):
    names = sorted(f"t{i:04d}" for i in range(1200))
    with engine.begin() as conn:
        store.lock_targets(conn, names[::2])  # every other row exists already
    seen, stop = _statements(engine)
    try:
        with engine.begin() as conn:
            assert len(store.lock_targets(conn, names)) == 1200
    finally:
        stop()
    kinds = [s.split()[0] for s, _ in seen if s.startswith(("INSERT", "SELECT"))]
    assert kinds == ["INSERT"] * 3 + ["SELECT"] * 3  # chunks of 500: created first, then locked
    created = [name for s, params in seen if s.startswith("INSERT") for name in params]
    assert created == names  # one global order across the chunks


@on_postgres
def test_a_reload_locks_the_rule_state_before_resolving_the_alerts(engine):
    with engine.begin() as conn:
        store.lock_targets(conn, ["gone"])
    seen, stop = _statements(engine)
    try:
        with engine.begin() as conn:
            store.forget_removed_targets(conn, ["gone"], "2026-01-01 00:00:00")
    finally:
        stop()
    order = [s.split()[0] for s, _ in seen]
    assert order.index("SELECT") < order.index("DELETE")
    assert "FOR UPDATE" in seen[0][0] and "FROM targets" in seen[0][0]


@on_postgres
def test_a_batch_and_the_timer_hold_the_targets_file_row_before_any_rule_state(engine):
    from backend.ingest import Batch
    from backend.target_rules import TargetRules
    from backend.validation import parse_events

    seen, stop = _statements(engine)
    try:
        with engine.begin() as conn:
            Batch(conn, [], TargetRules(3)).record(parse_events([{"target_url": "https://a.example/", "is_success": True,
                                                     "status_code": 200, "timestamp": "2025-01-08T15:30:45Z"}]))
        with engine.begin() as conn:
            store.last_results(conn, ["a"])
    finally:
        stop()
    shares = [i for i, (s, _) in enumerate(seen) if s.endswith("FOR SHARE")]
    rule_state = [i for i, (s, _) in enumerate(seen) if "FROM targets " in s and s.endswith("FOR UPDATE")]
    assert len(shares) == 2 and shares[0] < rule_state[0] < shares[1] < rule_state[1]


def _wait_until_blocked(engine, pid: int) -> None:
    """Return once backend `pid` waits for a row lock (bounded)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            waiting = conn.execute(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                                   {"pid": pid}).scalar()
        if waiting == "Lock":
            return
        time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited for a lock")


@on_postgres
def test_two_writers_locking_overlapping_targets_in_opposite_physical_order_both_commit(engine):
    """Rows stored b, a and read by a plain scan: without the sort one writer holds b while waiting for a."""
    with engine.begin() as conn:
        store.lock_targets(conn, ["b"])
        store.lock_targets(conn, ["a"])
    first = engine.connect()
    second = engine.connect()
    errors: list[BaseException] = []
    try:
        second.begin()
        store.lock_targets(second, ["a"])  # holds a
        first.begin()
        # A plan that reads the heap in stored order (b first), as a large table's bitmap scan does.
        first.execute(text("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off"))
        first_pid = first.execute(text("SELECT pg_backend_pid()")).scalar()

        def lock_both():
            try:
                store.lock_targets(first, ["a", "b"])
                first.commit()
            except BaseException as exc:  # the deadlock victim's error, reported below
                errors.append(exc)
                first.rollback()

        worker = threading.Thread(target=lock_both)
        worker.start()
        _wait_until_blocked(engine, first_pid)
        second.execute(text("SET LOCAL lock_timeout = '5s'"))
        store.lock_targets(second, ["b"])  # with `first` holding b and waiting for a: 40P01
        second.commit()
        worker.join(timeout=10)
        assert not worker.is_alive()
        assert errors == []
    finally:
        first.close()
        second.close()
