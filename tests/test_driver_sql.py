"""Ingest statements on the driver cursor act as SQLAlchemy's did: ids in order, errors wrapped, listeners see them."""

from __future__ import annotations

import pytest
from sqlalchemy import event as sql_event
from sqlalchemy.exc import IntegrityError

from backend import store
from tests.backend_fixtures import engine  # noqa: F401 (a fixture)


def _row(k: int, uid: str | None = None) -> dict:
    return {"target_url": f"https://t{k % 7}.example/", "status_code": 200, "response_time_ms": 40,
            "timestamp": "2026-12-01 10:00:00", "is_success": 1, "error_message": None,
            "received_at": "2026-12-01 10:00:01", "event_uid": uid or f"00000000-0000-4000-8000-{k:012x}",
            "is_late": 0, "checked_at": f"2026-12-01 10:00:00.{k % 1000:03d}", "target": None, "agent": None,
            "failed": 0}


def test_insert_events_returns_each_rows_id_in_the_order_given_across_chunks(engine):
    rows = [_row(k) for k in range(1203)]  # three INSERTs of at most 500 rows
    rows[700]["cert_expires_at"] = "2027-01-01 00:00:00"  # one row with measurements widens every row
    with engine.begin() as conn:
        ids = store.insert_events(conn, rows)
        stored = dict(conn.exec_driver_sql("SELECT id, event_uid FROM events").fetchall())
    assert len(set(ids)) == 1203
    assert [stored[i] for i in ids] == [row["event_uid"] for row in rows]


def test_ids_stay_each_rows_own_after_the_newest_rows_were_purged(engine):
    # On SQLite the ids are counted back from the last one inserted: that holds only if they follow
    # the largest id the table ever had, not the largest it has now (events is AUTOINCREMENT).
    with engine.begin() as conn:
        first = store.insert_events(conn, [_row(k) for k in range(10)])
        conn.exec_driver_sql(f"DELETE FROM events WHERE id > {first[4]}")
        rows = [_row(k) for k in range(10, 13)]
        ids = store.insert_events(conn, rows)
        stored = dict(conn.exec_driver_sql("SELECT id, event_uid FROM events").fetchall())
    assert min(ids) > max(first)
    assert [stored[i] for i in ids] == [row["event_uid"] for row in rows]


def test_a_database_error_is_sqlalchemys_with_its_values_hidden(engine):
    secret_uid = "5ec2e7ab-0000-4000-8000-000000000001"
    with engine.begin() as conn:
        store.insert_events(conn, [_row(1, secret_uid)])
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        store.insert_events(conn, [_row(2, secret_uid)])  # the same event_uid: the unique index refuses it
    # The statement's values are left out, as the engine's hide_parameters does (PostgreSQL's own
    # message may still name the key that clashed, as it did before these statements moved).
    assert "parameters hidden" in str(caught.value) and "[parameters:" not in str(caught.value)


def test_listeners_see_the_statements(engine):
    seen: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sql_event.listen(engine, "before_cursor_execute", remember)
    try:
        with engine.begin() as conn:
            store.events_by_uid(conn, ["00000000-0000-4000-8000-000000000001"])
    finally:
        sql_event.remove(engine, "before_cursor_execute", remember)
    assert any(s.startswith("SELECT event_uid, id FROM events") for s in seen)
