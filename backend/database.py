"""Schema (SPEC §3) as SQLAlchemy Core tables, and the engine that talks to it.

Only portable SQL: every query runs on SQLite today and PostgreSQL later.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (Column, ForeignKey, Index, Integer, MetaData, String, Table, Text, create_engine,
                        event, text)
from sqlalchemy.engine import Engine, make_url

from backend.config import ROOT

metadata = MetaData()

events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("target_url", Text, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_time_ms", Integer, nullable=True),
    Column("timestamp", Text, nullable=False),  # UTC, YYYY-MM-DD HH:MM:SS
    Column("is_success", Integer, nullable=False),
    Column("error_message", Text, nullable=True),
    Column("received_at", Text, nullable=False),
    # Rule lookups read a target's latest events.
    Index("ix_events_target_url_id", "target_url", "id"),
    sqlite_autoincrement=True,  # ids are never reused, even after a purge
)

alerts = Table(
    "alerts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Integer, ForeignKey("events.id"), nullable=False),
    Column("target_url", Text, nullable=False),
    Column("alert_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Text, nullable=False),
    Column("acknowledged_at", Text, nullable=True),
    Column("resolved_at", Text, nullable=True),
    Column("resolved_event_id", Integer, ForeignKey("events.id"), nullable=True),
    Column("message", Text, nullable=False),
    Index("ix_alerts_status_id", "status", "id"),
    Index("ix_alerts_target_url_id", "target_url", "id"),
    # The database itself refuses a second active alert for one target (SPEC §5 dedup).
    Index("uq_alerts_one_active_per_target", "target_url", unique=True,
          sqlite_where=text("status IN ('OPEN', 'ACK')"),
          postgresql_where=text("status IN ('OPEN', 'ACK')")),
    sqlite_autoincrement=True,  # ids are never reused, even after a purge
)

notification_logs = Table(
    "notification_logs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.id"), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("notice_type", String(16), nullable=False),  # ERROR or RECOVERY: which message was sent
    Column("status", String(16), nullable=False),  # SENT or FAILED
    Column("attempted_at", Text, nullable=False),
    Column("response_code", Integer, nullable=True),
    Column("message_id", Text, nullable=True),
    Column("retry_count", Integer, nullable=False),
    Column("error_message", Text, nullable=True),
    Index("ix_notification_logs_alert_id", "alert_id", "id"),
    sqlite_autoincrement=True,  # ids are never reused, even after a purge
)


def make_engine(database_url: str) -> Engine:
    """An engine for DATABASE_URL; a relative SQLite path resolves against the repository (SPEC §1)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:" and not Path(url.database).is_absolute():
        url = url.set(database=str(ROOT / url.database))
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # WAL lets readers (GET /alerts, the sqlite3 CLI) run while a writer commits; the busy
    # timeout makes a briefly locked database wait instead of failing the request.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_db(engine: Engine) -> None:
    """Create every table and index that is missing; safe to run any number of times."""
    metadata.create_all(engine)
