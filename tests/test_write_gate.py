"""The SQLite write gate: a bounded wait for another writer (then 503), and no engine or descriptor kept alive."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

from backend import database
from backend.database import DatabaseBusyError, make_engine, write_transaction
from tests.backend_fixtures import api, app, backend_env, client, console, db, event, settings  # noqa: F401
from tests.support.databases import IS_POSTGRES
from tests.support.procs import stop

pytestmark = pytest.mark.skipif(IS_POSTGRES, reason="the write gate is SQLite's; PostgreSQL locks rows")

# Never waits for the lock (LOCK_NB): it says "busy" and ends, so reading its answer is bounded.
HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    sys.exit("busy: another process holds " + sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def write_once(engine) -> None:
    with write_transaction(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")


def test_many_engines_made_used_and_dropped_keep_no_descriptor_open(tmp_path):
    url = f"sqlite:///{tmp_path / 'gate.db'}"
    write_once(make_engine(url))  # the first use opens SQLite's own files too
    gc.collect()
    fds, gates = open_fds(), len(database._gates)
    for n in range(40):
        engine = make_engine(url)
        write_once(engine)
        if n % 2:
            engine.dispose()  # closes its gate at once
        del engine  # the others' gates close when the engine is collected
    gc.collect()
    assert open_fds() - fds <= 2
    assert len(database._gates) == gates


def test_a_disposed_engine_writes_again_through_a_new_gate(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gate.db'}")
    write_once(engine)
    first = database._gates[engine]
    engine.dispose()
    assert engine not in database._gates and first._fd == first._turn_fd == -1  # closed at once
    write_once(engine)
    second = database._gates[engine]
    assert second is not first and second._fd >= 0 and second._turn_fd >= 0
    engine.dispose()


@pytest.fixture
def lock_holder(settings):
    """Another process holding the write gate's lock file of the test database."""
    path = settings.database_url.removeprefix("sqlite:///") + ".lock"
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        if proc.stdout.readline().strip() != "locked":  # bounded: the helper never waits for the lock
            proc.wait(timeout=10)
            pytest.fail(f"the lock helper did not take the lock: {proc.stderr.read().strip()}")
        yield proc
    finally:
        stop(proc)
        proc.stdout.close()
        proc.stderr.close()


def test_a_writer_waits_a_bounded_time_then_gets_a_clear_error(app, lock_holder, monkeypatch):
    monkeypatch.setattr(database, "WRITE_LOCK_TIMEOUT_SECONDS", 0.5)
    with pytest.raises(DatabaseBusyError) as busy:
        write_once(app.extensions["outage"].engine)
    assert str(busy.value) == "database is locked by another writer for more than 0.5 s"


def test_post_events_answers_503_in_one_sentence_while_another_process_holds_the_lock(app, api, db, lock_holder,
                                                                                      monkeypatch):
    monkeypatch.setattr(database, "WRITE_LOCK_TIMEOUT_SECONDS", 0.5)
    answer = api.post("/events", json=event())
    assert answer.status_code == 503
    assert answer.get_json()["error"] == "The database is busy with another writer; nothing was stored, try again."
    assert db.count("events") == 0
    stop(lock_holder)
    assert api.post("/events", json=event()).status_code == 201


# Takes the gate turn after turn with no pause between, as a busy process's writers do; writes how
# many turns it has had into a file, then says "running" once it has had three.
BUSY_WRITER = """
import os, sys, time
from pathlib import Path
from backend.database import _WriteGate
gate, count = _WriteGate(sys.argv[1]), Path(sys.argv[2])
for turn in range(1, 401):
    with gate.hold(30):
        count.with_suffix(".new").write_text(str(turn))
        os.replace(count.with_suffix(".new"), count)  # a reader never sees it half written
        time.sleep(0.01)
    if turn == 3:
        print("running", flush=True)
"""


def test_a_process_waiting_for_the_gate_gets_it_before_a_busy_one_takes_it_twice_more(tmp_path):
    database_path, count = str(tmp_path / "gate.db"), tmp_path / "turns"
    proc = subprocess.Popen([sys.executable, "-c", BUSY_WRITER, database_path, str(count)], cwd=database.ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    gate = database._WriteGate(database_path)
    try:
        assert proc.stdout.readline().strip() == "running", proc.stderr.read()  # bounded: 400 turns of 10 ms
        before = int(count.read_text())
        with gate.hold(30):
            after = int(count.read_text())
        # Without turns, the busy process took the lock back within microseconds each time, and a
        # writer polling every 2 ms waited for all of its 400 turns.
        assert after - before <= 2, (before, after)
        assert proc.poll() is None  # it was still busy
    finally:
        gate.close()
        stop(proc)
        proc.stdout.close()
        proc.stderr.close()


def test_the_wal_is_checkpointed_every_wal_checkpoint_pages_and_cut_back_after(tmp_path, monkeypatch):
    # Set lower here, so that a few transactions cross it (SQLite's own default is 1,000 pages).
    monkeypatch.setattr(database, "WAL_CHECKPOINT_PAGES", 100)
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        with write_transaction(engine) as conn:
            conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
        for _ in range(40):  # ~8 pages a transaction: ~320 pages in all, three checkpoints' worth
            with write_transaction(engine) as conn:
                conn.exec_driver_sql("INSERT INTO t VALUES (randomblob(30000))")
        with engine.connect() as conn:
            limit = conn.exec_driver_sql("PRAGMA journal_size_limit").scalar()
            _, frames, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
    finally:
        engine.dispose()
    assert limit == database.WAL_SIZE_LIMIT_BYTES == 64 * 1024 * 1024
    assert frames <= 100 + 10  # the WAL started over after each checkpoint: not ~320 frames long
