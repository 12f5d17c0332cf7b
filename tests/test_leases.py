"""store.acquire_lease between two connections: a takeover and a late renewal never both win."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine

from backend import store
from backend.database import init_db, make_engine, write_transaction
from tests.backend_fixtures import Db
from tests.support.databases import database_url

NAME = "console"
T0, T1, T2, T3 = (f"2026-01-01 00:{m}.000" for m in ("00:00", "00:30", "01:00", "01:30"))


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(database_url(tmp_path))
    init_db(engine)
    yield engine
    engine.dispose()


def test_a_takeover_loses_to_a_renewal_committed_after_it_read_the_lease(engine, tmp_path):
    """B reads A's lease and judges A dead; A renews and commits; B's update must then change nothing."""
    with engine.begin() as conn:
        assert store.acquire_lease(conn, NAME, "A", T0, T1)
    renewed = []

    def a_renews_meanwhile(holder: str) -> bool:
        # Between B's read and B's update, on a connection of its own, committed.
        with write_transaction(engine) as other:
            renewed.append(store.acquire_lease(other, NAME, "A", T0, T2))
        return True  # B judged A's process gone from what it had read

    # B in autocommit: each statement sees what is committed when it runs, as in PostgreSQL's READ
    # COMMITTED (where an UPDATE waits for a concurrent one, then re-checks its WHERE on the new row).
    # The backend's own SQLite writers lock first (BEGIN IMMEDIATE); this one lets the race happen.
    other_engine = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    try:
        with other_engine.connect() as conn:
            taken = store.acquire_lease(conn, NAME, "B", T0, T3, is_dead=a_renews_meanwhile)
    finally:
        other_engine.dispose()
    assert renewed == [True]
    assert not taken
    rows = Db(database_url(tmp_path)).rows("SELECT holder, expires_at FROM leases")
    assert [tuple(r) for r in rows] == [("A", T2)]
