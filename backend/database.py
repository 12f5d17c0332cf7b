"""Schema (SPEC §3) as SQLAlchemy Core tables, and the engine that talks to it.

Only portable SQL: every query runs on SQLite today and PostgreSQL later.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import weakref
from contextlib import contextmanager, nullcontext
from pathlib import Path

from sqlalchemy import (BigInteger, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                        create_engine, event, insert_sentinel, text)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from backend import driver_sql
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
    # The file target's name and the agent's name, when the agent sent them (SPEC §8). No index:
    # nothing queries by them yet, and every index is paid for on each insert.
    Column("target", Text, nullable=True),
    Column("agent", Text, nullable=True),
    # What the agent measured of a file target's check, when known (SPEC §9): phase times from the
    # start of the request, in ms, and the server certificate's expiry (UTC, stored form).
    Column("dns_ms", Float, nullable=True),
    Column("connect_ms", Float, nullable=True),
    Column("tls_ms", Float, nullable=True),
    Column("first_byte_ms", Float, nullable=True),
    Column("cert_expires_at", Text, nullable=True),
    # 1 when the check failed, as ingest judged it from its resolved target (rules.is_failure): the
    # recount and the rollups read this one verdict rather than judging the row again.
    Column("failed", Integer, nullable=False, server_default=text("0")),
    # The row's place in its multi-row INSERT, which SQLAlchemy sends and reads back to match ids
    # to rows: without it, on SQLite, an INSERT ... RETURNING in parameter order runs once per row.
    insert_sentinel("batch_position", Integer),
    Index("ix_events_target_url_checked_at", "target_url", "checked_at"),  # the rules' recount
    Index("uq_events_event_uid", "event_uid", unique=True),
    Index("ix_events_timestamp", "timestamp"),  # retention purge
    sqlite_autoincrement=True,  # ids are never reused, even after a purge
)

alerts = Table(
    "alerts", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", Id, ForeignKey("events.id"), nullable=False),
    Column("target_url", Text, nullable=False),  # the URL checked, for messages
    # The target's name, the alert's identity (SPEC §8): COALESCE(events.target, events.target_url).
    Column("target", Text, nullable=False),
    Column("alert_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Text, nullable=False),
    Column("acknowledged_at", Text, nullable=True),
    Column("resolved_at", Text, nullable=True),
    Column("resolved_event_id", Id, ForeignKey("events.id"), nullable=True),
    Column("message", Text, nullable=False),
    Column("reason", Text, nullable=True),  # a WARNING's cause as JSON, for its notices (messages.warning_text)
    # Due times while OPEN (SPEC §11, backend/alert_timers.py): the next reminder, the escalation; None: none (left).
    Column("remind_at", Text, nullable=True),
    Column("escalate_at", Text, nullable=True),
    # Who acted (SPEC §10): api, dashboard, cli or telegram:@user; NULL for a resolve by a recovery.
    Column("acknowledged_by", Text, nullable=True),
    Column("resolved_by", Text, nullable=True),
    Index("ix_alerts_status_id", "status", "id"),
    Index("ix_alerts_target_url_id", "target_url", "id"),
    Index("ix_alerts_target_id", "target", "id"),
    # The database itself refuses a second active alert for one target (SPEC §5 dedup, §9).
    Index("uq_alerts_one_active_per_target", "target", unique=True,
          sqlite_where=text("status IN ('OPEN', 'ACK')"),
          postgresql_where=text("status IN ('OPEN', 'ACK')")),
    sqlite_autoincrement=True,  # ids are never reused, even after a purge
)

notification_logs = Table(
    "notification_logs", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # NULL for a channel test (POST /channels/<name>/test, notice_type TEST): it belongs to no alert.
    Column("alert_id", Id, ForeignKey("alerts.id"), nullable=True),
    Column("channel", String(32), nullable=False),
    Column("notice_type", String(16), nullable=False),  # ERROR, RECOVERY, … or TEST: which message was sent
    Column("status", String(16), nullable=False),  # SENT or FAILED
    Column("attempted_at", Text, nullable=False),
    Column("response_code", Integer, nullable=True),
    Column("message_id", Text, nullable=True),
    Column("retry_count", Integer, nullable=False),
    Column("error_message", Text, nullable=True),
    # The chat a SENT Telegram message went to, as Telegram answered it: a button press counts only
    # from that chat (SPEC §10), whichever Telegram channel sent it.
    Column("chat_id", Text, nullable=True),
    # A SUPPRESSED row (SPEC §11): what kept the notice quiet ("silence 3", "maintenance nightly"), the
    # silence's id when it was one, and, while the notice still waits to go out, when (the silence's end).
    Column("suppressed_by", Text, nullable=True),
    Column("silence_id", Id, nullable=True),  # silences.id (no foreign key: a plain ADD COLUMN on SQLite)
    Column("release_at", Text, nullable=True),  # precise UTC; NULL once handled, or for a notice never to send
    Index("ix_notification_logs_alert_id", "alert_id", "id"),
    Index("ix_notification_logs_release_at", "release_at"),
    sqlite_autoincrement=True,  # ids are never reused, even after a purge
)


# One row per target: the rule state that every new result is judged against (SPEC §5). Writers
# update it inside their transaction, so "read state, decide, write" never interleaves.
targets = Table(
    "targets", metadata,
    Column("name", Text, primary_key=True),  # the target key: its name, or the URL of a target not in the file
    Column("failures_in_a_row", Integer, nullable=False),
    Column("last_check_at", Text, nullable=True),  # the newest applied check, as events.checked_at
    Column("successes_in_a_row", Integer, nullable=False, server_default=text("0")),
    Column("slow_in_a_row", Integer, nullable=False, server_default=text("0")),  # successes over max_response_time_ms
    Column("clear_in_a_row", Integer, nullable=False, server_default=text("0")),  # checks without a WARNING condition
    # When the backend last received a result for it, on its own clock (the deadline timer's measure).
    Column("last_received_at", Text, nullable=True),
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
    Column("next_attempt_at", Text, nullable=False),  # full-precision UTC ISO time; a claim's end while claimed
    Column("claimed_by", Text, nullable=True),  # the lease holder id of the process attempting it now
    Column("created_at", Text, nullable=False),
    Column("finished_at", Text, nullable=True),
    Index("ix_deliveries_channel_status_id", "channel", "status", "id"),
    Index("ix_deliveries_alert_id", "alert_id"),
    sqlite_autoincrement=True,
)

# The targets file as last loaded (SPEC §8), one row per target, so that every backend process sees
# the same list. `spec` is the target's settings as JSON with `${NAME}` unresolved: secrets are
# resolved only when the list is served to agents.
file_targets = Table(
    "file_targets", metadata,
    Column("name", Text, primary_key=True),
    Column("position", Integer, nullable=False),  # its place in the file
    Column("kind", String(8), nullable=False),  # http, tcp or push
    Column("target_url", Text, nullable=True),  # what its events carry (push://<name> for push targets)
    Column("spec", Text, nullable=False),
    Column("loaded_at", Text, nullable=False),  # when the target first appeared (deadlines count from it)
    Column("changed_at", Text, nullable=False),  # when its settings last changed
    # A push target's secret for /ping/<token> (SPEC §9); kept across reloads, NULL for other kinds.
    Column("ping_token", Text, nullable=True),
    Index("ix_file_targets_position", "position"),
    Index("ix_file_targets_target_url", "target_url"),
    Index("uq_file_targets_ping_token", "ping_token", unique=True),
)

# One row (id 1): which version of the targets file `file_targets` holds. Reloads lock this row,
# so two processes never apply two versions at once.
targets_file = Table(
    "targets_file", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("fingerprint", Text, nullable=True),  # SHA-256 of the file's bytes; "absent" for no file
    Column("loaded_at", Text, nullable=True),
    # The file's named channels (SPEC §10) as JSON, `${NAME}` unresolved: every process builds its own from it.
    Column("channels", Text, nullable=True),
    # When a target was last paused or resumed (SPEC §11): the rules' per-process cache is keyed on it too.
    Column("pauses_changed_at", Text, nullable=True),
)

# Silences (SPEC §11, POST /silences). A silence ended early (DELETE) keeps its row, with ends_at
# moved to then, so the notification_logs rows it suppressed still point at it. Times precise UTC.
silences = Table(
    "silences", metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("match", Text, nullable=False),  # a target name, a shell glob over names, or tag:<tag>
    Column("starts_at", Text, nullable=False),
    Column("ends_at", Text, nullable=False),
    Column("reason", Text, nullable=False, server_default=text("''")),
    Column("created_at", Text, nullable=False),
    Column("ended_early_at", Text, nullable=True),
    Index("ix_silences_ends_at", "ends_at"),
    sqlite_autoincrement=True,
)

# The targets file's `maintenance:` entries as last loaded, replaced with each load (SPEC §11).
maintenance_windows = Table(
    "maintenance_windows", metadata,
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("spec", Text, nullable=False),  # the validated entry as JSON
)

# Paused targets by name (PATCH /targets/<name>): apart from file_targets, so a reload keeps them.
paused_targets = Table(
    "paused_targets", metadata,
    Column("name", Text, primary_key=True),
    Column("paused_at", Text, nullable=False),
)

# One row (id 1): the deadline timer's heartbeat (backend/deadline_timer.py). `beat_at` is its last
# pass; `resumed_at` when it last started after a gap (the backend was down), which moves deadlines
# that passed meanwhile to at least then plus an allowance.
deadline_timer = Table(
    "deadline_timer", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("beat_at", Text, nullable=True),
    Column("resumed_at", Text, nullable=True),
)

agents = Table(
    "agents", metadata,
    Column("name", Text, primary_key=True),  # AGENT_NAME (SPEC §8)
    Column("last_event_at", Text, nullable=True),  # when its events last arrived (written at most every few seconds)
    Column("last_pull_at", Text, nullable=True),  # when it last asked for GET /agent/targets
)

# Per target and hour of check time, what GET /targets/<name>/stats sums (SPEC §8), so a 30-day
# window reads 720 rows, not 43,200 events. `target` is COALESCE(events.target, events.target_url);
# `hour` is the stored time form cut to the hour. Filled by the roller (backend/rollups.py), kept
# past RETENTION_DAYS (backend/retention.py). No rowid on SQLite: the key is the table.
rollups = Table(
    "rollups", metadata,
    Column("target", Text, primary_key=True),
    Column("hour", Text, primary_key=True),  # YYYY-MM-DD HH:00:00, UTC
    Column("checks", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("response_ms_sum", BigInteger, nullable=False),
    Column("response_ms_count", Integer, nullable=False),  # checks with a response time
    Column("histogram", Text, nullable=False),  # backend/histogram.py's sparse `bucket:count` pairs
    sqlite_with_rowid=False,
)

# One row (id 1): every event with id <= last_event_id is counted in `rollups`, and none above it.
rollup_progress = Table(
    "rollup_progress", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_event_id", BigInteger, nullable=False),
)

# One row (id 1): the next Telegram update to ask getUpdates for (backend/telegram_updates.py); advanced
# in the transaction that applies the update, so none is lost or applied twice across restarts.
telegram_offset = Table(
    "telegram_offset", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("next_update_id", BigInteger, nullable=False),
)

# Named leases (backend/leases.py): at most one holder at a time across every backend process.
leases = Table(
    "leases", metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
)


def make_engine(database_url: str) -> Engine:
    """An engine for DATABASE_URL; a relative SQLite path resolves against the repository (SPEC §1)."""
    url = make_url(database_url)
    # hide_parameters: an error's text (logged) leaves out the statement's values, ping tokens among them.
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, hide_parameters=True)
    if url.database and url.database != ":memory:" and not Path(url.database).is_absolute():
        url = url.set(database=str(ROOT / url.database))
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)
    event.listen(engine, "connect", configure_sqlite_connection)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


WAL_CHECKPOINT_PAGES = 10_000  # 40 MiB of WAL between checkpoints: see configure_sqlite_connection
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024  # what the WAL file is cut back to after a checkpoint

WRITE_LOCK_TIMEOUT_SECONDS = 30.0  # as long as SQLite's own busy timeout below


class DatabaseBusyError(Exception):
    """Another writer held the database for longer than a writer may wait; the API answers 503."""

    def __init__(self, seconds: float):
        super().__init__(f"database is locked by another writer for more than {seconds:g} s")


class _WriteGate:
    """One writer at a time into a SQLite file, across threads and processes, taking turns, with a bounded wait.

    SQLite's own busy handler makes a waiting writer sleep and retry (up to 100 ms a time), which
    under load gave POST /events a p99 of 700 ms. Here threads of one process queue on a lock
    (woken at once) and processes on a flock of a side file (`<db>.lock`), polled, so no wait
    outlasts its limit. A process waits for that lock holding a second one (`<db>.turn`), which
    the holder's process must take before it writes again: so a busy process cannot take the lock
    back turn after turn while another waits (that starved the other process's requests: a p99 of
    860 ms for batches of 500). The one next in line looks every 0.25 ms at most, so the lock
    idles little between two processes' turns; the others in line every 2 ms. BEGIN IMMEDIATE and
    the busy timeout stay, for writers that do not know these files (the sqlite3 CLI).
    """

    def __init__(self, database_path: str):
        self._threads = threading.Lock()  # flock excludes processes, not threads sharing one file
        self._fd = os.open(f"{database_path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._turn_fd = os.open(f"{database_path}.turn", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            os.close(self._fd)
            raise
        self.finalizer: weakref.finalize | None = None

    @contextmanager
    def hold(self, timeout_seconds: float):
        deadline = time.monotonic() + timeout_seconds
        if not self._threads.acquire(timeout=timeout_seconds):
            raise DatabaseBusyError(timeout_seconds)
        try:
            # In line first (the turn), then the lock itself; the turn goes as soon as we have the lock,
            # to the next process in line, which then waits for us alone.
            self._lock_file(self._turn_fd, deadline, timeout_seconds, 0.002)
            try:
                # Next in line: look often, so the lock never idles long between two processes' turns.
                self._lock_file(self._fd, deadline, timeout_seconds, 0.00025)
            finally:
                fcntl.flock(self._turn_fd, fcntl.LOCK_UN)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    @staticmethod
    def _lock_file(fd: int, deadline: float, timeout_seconds: float, longest_pause: float) -> None:
        pause = 0.00005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DatabaseBusyError(timeout_seconds) from None
                time.sleep(pause)
                pause = min(pause * 2, longest_pause)

    def close(self) -> None:
        for name in ("_fd", "_turn_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)


# Weak keys, and values that hold no reference to their engine, so an engine that is dropped is
# collected and its gate's file descriptor closed; dispose() closes the gate at once.
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
                gate.finalizer = weakref.finalize(engine, gate.close)
                if not event.contains(engine, "engine_disposed", _close_gate):
                    event.listen(engine, "engine_disposed", _close_gate)
        return _gates[engine]


def _close_gate(engine: Engine) -> None:
    # The next write after a dispose() opens a new gate; this one's descriptor goes now.
    with _gates_lock:
        gate = _gates.pop(engine, None)
    if gate is not None:
        gate.finalizer.detach()
        gate.close()


@contextmanager
def write_transaction(engine: Engine):
    """A transaction that will write: on SQLite it takes the write lock up front (BEGIN IMMEDIATE).

    A deferred SQLite transaction that reads and then writes fails at once with "database is
    locked" when another process committed in between; taking the lock first makes concurrent
    writers, in any number of processes, wait their turn instead, for WRITE_LOCK_TIMEOUT_SECONDS
    at most (then DatabaseBusyError). On PostgreSQL this is a plain transaction: writers lock
    the rows they change.
    """
    gate = _gate_for(engine)
    try:
        with gate.hold(WRITE_LOCK_TIMEOUT_SECONDS) if gate else nullcontext(), engine.connect() as conn:
            conn.execution_options(begin_immediate=True)
            with conn.begin():
                yield conn
    except OperationalError as exc:
        if "database is locked" in str(exc.orig):  # SQLite's own busy timeout ran out
            raise DatabaseBusyError(WRITE_LOCK_TIMEOUT_SECONDS) from exc
        raise


def _sqlite_begin(conn) -> None:
    immediate = conn.get_execution_options().get("begin_immediate", False)
    # On the driver's cursor, like the ingest statements: SQLAlchemy's execution of it cost more than SQLite's.
    driver_sql.execute(conn, "BEGIN IMMEDIATE" if immediate else "BEGIN").close()


def configure_sqlite_connection(dbapi_connection, _record=None) -> None:
    """The backend's settings for a new sqlite3 connection (the engine's "connect" hook; the benchmark's raw ceiling too)."""
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
    # A checkpoint copies each page changed since the last one into the database file once, however
    # often it changed: a batch over 500 targets changes a leaf of the per-target index for each,
    # and the next batch the same leaves again. So checkpoints ten times further apart (the default
    # is every 1,000 pages, 4 MiB) cost far less per commit: inserting batches of 500 with sqlite3
    # went from 27,000 to 43,000 rows/s.
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
    cursor.close()

