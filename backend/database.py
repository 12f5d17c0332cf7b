"""Schema (SPEC §3) as SQLAlchemy Core tables, and the engine that talks to it.

Only portable SQL: every query runs on SQLite today and PostgreSQL later.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import (BigInteger, Column, ForeignKey, Index, Integer, MetaData, String, Table, Text, create_engine,
                        event, text)
from sqlalchemy.engine import Engine, make_url

from backend.config import ROOT

metadata = MetaData()

# 64-bit ids on PostgreSQL; plain INTEGER on SQLite, where only that spelling is the rowid.
Id = BigInteger().with_variant(Integer, "sqlite")

events = Table(
    "events", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("target_url", Text, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("response_time_ms", Integer, nullable=True),
    Column("timestamp", Text, nullable=False),  # UTC, YYYY-MM-DD HH:MM:SS
    Column("is_success", Integer, nullable=False),
    Column("error_message", Text, nullable=True),
    Column("received_at", Text, nullable=False),
    # The agent's idempotency key: a retried send stores nothing twice (NULL for clients without one).
    Column("event_uid", Text, nullable=True),
    # 1 when the check is older than one already applied for its target (a late replay); such an
    # event can complete a run of failures but never resolves an alert (see rules.decide_late).
    Column("is_late", Integer, nullable=False, server_default=text("0")),
    Column("checked_at", Text, nullable=False),  # `timestamp` to the millisecond (.fff), for ordering checks
    Index("ix_events_target_url_checked_at", "target_url", "checked_at"),  # the rules' recount
    Index("uq_events_event_uid", "event_uid", unique=True),
    Index("ix_events_timestamp", "timestamp"),  # retention purge
    sqlite_autoincrement=True,  # ids are never reused, even after a purge
)

alerts = Table(
    "alerts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", Id, ForeignKey("events.id"), nullable=False),
    Column("target_url", Text, nullable=False),
    Column("alert_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Text, nullable=False),
    Column("acknowledged_at", Text, nullable=True),
    Column("resolved_at", Text, nullable=True),
    Column("resolved_event_id", Id, ForeignKey("events.id"), nullable=True),
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
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alert_id", Id, ForeignKey("alerts.id"), nullable=False),
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


# One row per target: the rule state that every new result is judged against (SPEC §5). Writers
# update it inside their transaction, so "read state, decide, write" never interleaves.
targets = Table(
    "targets", metadata,
    Column("target_url", Text, primary_key=True),
    Column("failures_in_a_row", Integer, nullable=False),
    Column("last_check_at", Text, nullable=True),  # the newest applied check, as events.checked_at
)

# The outbox: one row per (notice, channel), written in the same transaction as the alert change
# that caused it, delivered later by the dispatcher. A crash leaves it PENDING, never lost.
deliveries = Table(
    "deliveries", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("alert_id", Id, ForeignKey("alerts.id"), nullable=False),
    Column("event_id", Id, ForeignKey("events.id"), nullable=False),  # the check the message describes
    Column("channel", String(32), nullable=False),
    Column("notice_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # PENDING, SENT or FAILED
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", Text, nullable=False),  # full-precision UTC ISO time
    Column("created_at", Text, nullable=False),
    Column("finished_at", Text, nullable=True),
    Index("ix_deliveries_channel_status_id", "channel", "status", "id"),
    Index("ix_deliveries_alert_id", "alert_id"),
    sqlite_autoincrement=True,
)

# Named leases: at most one holder at a time across every backend process (the dispatcher of each
# channel, the retention purge). A holder that dies simply lets its lease expire.
leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
)


def make_engine(database_url: str) -> Engine:
    """An engine for DATABASE_URL; a relative SQLite path resolves against the repository (SPEC §1)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if url.database and url.database != ":memory:" and not Path(url.database).is_absolute():
        url = url.set(database=str(ROOT / url.database))
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


class _WriteGate:
    """One writer at a time into a SQLite file, across threads and processes, woken without polling.

    SQLite's own busy handler makes a waiting writer sleep and retry (up to 100 ms a time), which
    under load gave POST /events a p99 of 700 ms; a blocking flock on a side file hands the turn
    over the moment the last writer commits. BEGIN IMMEDIATE and the busy timeout stay, for
    writers that do not know this file (the sqlite3 CLI).
    """

    def __init__(self, database_path: str):
        self._threads = threading.Lock()  # flock excludes processes, not threads sharing one file
        self._fd = os.open(f"{database_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)

    @contextmanager
    def hold(self):
        with self._threads:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)


_writers: "weakref.WeakKeyDictionary[Engine, Engine]" = weakref.WeakKeyDictionary()
_gates: "weakref.WeakKeyDictionary[Engine, _WriteGate | None]" = weakref.WeakKeyDictionary()
_gates_lock = threading.Lock()


def _gate_for(engine: Engine) -> _WriteGate | None:
    """The write gate of a SQLite file engine, made on its first write; None for other databases."""
    with _gates_lock:
        if engine not in _gates:
            database = engine.url.database
            is_file = engine.dialect.name == "sqlite" and database and database != ":memory:"
            gate = _gates[engine] = _WriteGate(database) if is_file else None
            if gate is not None:
                weakref.finalize(engine, gate.close)
        return _gates[engine]


@contextmanager
def write_transaction(engine: Engine):
    """A transaction that will write: on SQLite it takes the write lock up front (BEGIN IMMEDIATE).

    A deferred SQLite transaction that reads and then writes fails at once with "database is
    locked" when another process committed in between; taking the lock first makes concurrent
    writers, in any number of processes, wait their turn instead. On PostgreSQL this is a plain
    transaction: writers lock the rows they change.
    """
    writer = _writers.get(engine)
    if writer is None:
        writer = _writers[engine] = engine.execution_options(begin_immediate=True)
    gate = _gate_for(engine)
    if gate is None:
        with writer.begin() as conn:
            yield conn
    else:
        with gate.hold(), writer.begin() as conn:
            yield conn


def _sqlite_begin(conn) -> None:
    immediate = conn.get_execution_options().get("begin_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_connect(dbapi_connection, _record) -> None:
    # Let SQLAlchemy's "begin" hook emit BEGIN itself (the SQLAlchemy recipe for pysqlite), so
    # writers can ask for BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    # WAL lets readers (GET /alerts, the sqlite3 CLI) run while a writer commits; the busy
    # timeout makes a briefly locked database wait instead of failing the request.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 32 MiB of page cache (the default is 2 MiB): the events indexes of a busy install stay hot.
    cursor.execute("PRAGMA cache_size=-32768")
    cursor.close()


def init_db(engine: Engine) -> None:
    """Bring the schema up to date through the Alembic migrations; safe to run any number of times."""
    from backend.migrate import upgrade  # the migrations import this module's metadata

    upgrade(engine)
