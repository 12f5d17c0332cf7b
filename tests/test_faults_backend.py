"""Fault injection at the backend: kill -9, outage, a locked database, a multi-worker storm.

Real processes throughout: `python backend/app.py` (or gunicorn), `python agent/agent.py`, a real
target site, and the real SQLite files read back with the stdlib sqlite3 module.
"""

import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
import uuid
from contextlib import closing
from datetime import datetime, timedelta, timezone

import requests

from tests.support import figures
from tests.support.procs import (Backend, Gunicorn, assert_no_secret_in_any_file, base_env, run_to_exit, start, stop,
                                 wait_healthy, wait_until)

INTERVAL = "0.2"
CHECK_TIMEOUT = "1"
LOCK_SECONDS = 3.0


# -- helpers --------------------------------------------------------------------------------------

def count(backend: Backend, sql: str, *params) -> int:
    return backend.rows(sql, *params)[0][0]


def kill_hard(proc: subprocess.Popen) -> None:
    """SIGKILL by PID, and reap it (bounded)."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def spooled(tmp_path) -> int:
    """How many events wait in the agent's spool file (0 before the file exists)."""
    path = tmp_path / "spool.db"
    if not path.exists():
        return 0
    with closing(sqlite3.connect(path, timeout=10)) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM spooled_events").fetchone()[0]
        except sqlite3.OperationalError:  # the agent has not created the table yet
            return 0


def text_of(path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def agent_env(tmp_path, target, backend: Backend) -> dict:
    return base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url, CHECK_INTERVAL_SECONDS=INTERVAL,
                    REQUEST_TIMEOUT_SECONDS=CHECK_TIMEOUT)


def start_agent(tmp_path, env: dict, *args: str) -> subprocess.Popen:
    return start(["agent/agent.py", *args], env, tmp_path / "agent.out")


def settle(agent: subprocess.Popen, backend: Backend, target, tmp_path, env: dict, scenario: str,
           note: str) -> None:
    """Stop the agent cleanly, send what it left spooled, then check every check is stored once."""
    assert stop(agent) == 0
    drain_with_one_more_round(tmp_path, env)
    assert_every_check_stored_exactly_once(backend, target, tmp_path, scenario, note)


def drain_with_one_more_round(tmp_path, env: dict) -> None:
    """`agent.py --once` on the same spool: one more check, then every spooled event is sent."""
    status = run_to_exit(["agent/agent.py", "--once"], env, tmp_path / "agent.out", timeout=40)
    assert status == 0, "agent --once could not deliver its spool"
    assert spooled(tmp_path) == 0


def duplicate_uids(backend: Backend) -> list[tuple]:
    return backend.rows("SELECT event_uid, COUNT(*) FROM events GROUP BY event_uid HAVING COUNT(*) > 1")


def already_stored_reports(backend: Backend) -> int:
    """How many resent events the backend recognised by event_uid (its own log lines)."""
    return sum(int(n) for n in re.findall(r"(\d+) event\(s\) were already stored", backend.log_text()))


def assert_every_check_stored_exactly_once(backend: Backend, target, tmp_path, scenario: str, note: str) -> None:
    """The agent made target.hits checks; each is one event row, no event_uid twice; record figures."""
    checks = target.hits
    logged_checks = len(re.findall(rf"\] check {re.escape(target.url)} -> ", text_of(tmp_path / "agent.log")))
    stored = count(backend, "SELECT COUNT(*) FROM events")
    distinct = count(backend, "SELECT COUNT(DISTINCT event_uid) FROM events")
    doubled = duplicate_uids(backend)
    figures.record(scenario, sent=checks, stored=stored, duplicated=stored - distinct,
                   lost=max(0, checks - distinct),
                   note=f"{note}; resends absorbed by event_uid: {already_stored_reports(backend)}")
    assert logged_checks == checks, "agent.log and the target disagree on the number of checks"
    assert doubled == []
    assert count(backend, "SELECT COUNT(*) FROM events WHERE event_uid IS NULL") == 0
    assert stored == checks



def assert_in_check_time_order(backend: Backend, url: str) -> None:
    """By id, the events of `url` never go back in time, and none was applied as late."""
    stamps = [row[0] for row in backend.rows("SELECT timestamp FROM events WHERE target_url = ? ORDER BY id", url)]
    assert stamps == sorted(stamps)
    assert count(backend, "SELECT COUNT(*) FROM events WHERE is_late = 1") == 0


# -- a. kill -9 and restart ---------------------------------------------------------------------

def test_backend_killed_twice_mid_run_loses_and_doubles_no_check(tmp_path, target):
    backend = Backend(tmp_path).start()
    env = agent_env(tmp_path, target, backend)
    agent = start_agent(tmp_path, env)
    kills = 0
    try:
        for _ in range(2):
            before = count(backend, "SELECT COUNT(*) FROM events")
            wait_until(lambda: count(backend, "SELECT COUNT(*) FROM events") >= before + 5, 15,
                       message="five more stored checks")
            kill_hard(backend.proc)
            kills += 1
            failed_sends = text_of(tmp_path / "agent.log").count("retrying in")
            wait_until(lambda: text_of(tmp_path / "agent.log").count("retrying in") > failed_sends, 10,
                       message="a send that found the backend dead")
            backend.start()  # same port, same database
        after = count(backend, "SELECT COUNT(*) FROM events")
        wait_until(lambda: count(backend, "SELECT COUNT(*) FROM events") >= after + 5, 20,
                   message="the agent sending again after the last restart")
        settle(agent, backend, target, tmp_path, env, "backend kill -9 x2", f"{kills} SIGKILLs while the agent ran")
        assert_in_check_time_order(backend, target.url)
        assert "unhandled error" not in backend.log_text()
        backend.stop()
        assert_no_secret_in_any_file(tmp_path, backend.env["API_KEY"])
    finally:
        stop(agent)
        backend.stop()


# -- b. backend down while the agent restarts ---------------------------------------------------

def test_checks_spooled_across_an_agent_restart_reach_a_late_backend_once_and_in_order(tmp_path, target):
    backend = Backend(tmp_path)  # not started yet: the backend is down
    env = agent_env(tmp_path, target, backend)
    first = start_agent(tmp_path, env)
    second = None
    try:
        wait_until(lambda: spooled(tmp_path) >= 5 and "retrying in" in text_of(tmp_path / "agent.log"), 15,
                   message="five spooled checks and a failed send")
        assert stop(first) == 0
        left_behind = spooled(tmp_path)
        assert left_behind == target.hits  # the stopped agent kept every check it made

        second = start_agent(tmp_path, env)
        wait_until(lambda: f"spool holds {left_behind} results from an earlier run"
                   in text_of(tmp_path / "agent.log"), 10, message="the second agent finding the spool")
        backend.start()
        wait_until(lambda: count(backend, "SELECT COUNT(*) FROM events") >= left_behind + 3, 20,
                   message="the spool replayed and new checks arriving")
        settle(second, backend, target, tmp_path, env, "backend down, agent restarted",
               f"{left_behind} checks spooled by the first agent")
        assert_in_check_time_order(backend, target.url)
        backend.stop()
        assert_no_secret_in_any_file(tmp_path, backend.env["API_KEY"])
    finally:
        stop(first)
        if second is not None:
            stop(second)
        backend.stop()


# -- c. a locked database -----------------------------------------------------------------------

def test_database_locked_by_another_writer_delays_but_loses_nothing(tmp_path, target):
    backend = Backend(tmp_path).start()
    env = agent_env(tmp_path, target, backend)
    agent = start_agent(tmp_path, env)
    locker = Locker(backend.env["DATABASE_URL"])
    try:
        wait_until(lambda: count(backend, "SELECT COUNT(*) FROM events") >= 3, 15, message="three stored checks")
        locker.lock()
        try:
            stored_at_lock, hits_at_lock = count(backend, "SELECT COUNT(*) FROM events"), target.hits
            time.sleep(LOCK_SECONDS)  # the fault itself: hold the write lock this long
            assert target.hits >= hits_at_lock + 5, "the agent kept checking while the database was locked"
            assert count(backend, "SELECT COUNT(*) FROM events") == stored_at_lock  # nobody wrote past the lock
        finally:
            locker.unlock()
        wait_until(lambda: count(backend, "SELECT COUNT(*) FROM events") >= stored_at_lock + 5, 15,
                   message="the waiting writes going through")
        settle(agent, backend, target, tmp_path, env, "database locked 3 s",
               "another connection held the write lock")
        server_log, agent_log = backend.log_text(), text_of(tmp_path / "agent.log")
        assert "unhandled error" not in server_log and "-> 500" not in server_log
        assert not re.search(r"-> (500|503)", agent_log)
        assert "database is locked" not in server_log + text_of(backend.stdout_path)
        backend.stop()
        assert_no_secret_in_any_file(tmp_path, backend.env["API_KEY"])
    finally:
        locker.close()
        stop(agent)
        backend.stop()


class Locker:
    """Another writer holding the database: BEGIN EXCLUSIVE on SQLite, LOCK TABLE on PostgreSQL."""

    def __init__(self, url: str):
        if url.startswith("sqlite"):
            self.conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10, isolation_level=None)
            self.statements = ["BEGIN EXCLUSIVE"]
        else:
            import psycopg
            self.conn = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
            self.statements = ["BEGIN", "LOCK TABLE events, targets IN EXCLUSIVE MODE"]  # readers still read

    def lock(self) -> None:
        for statement in self.statements:
            self.conn.execute(statement)

    def unlock(self) -> None:
        self.conn.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


# -- d. a storm at a multi-worker server --------------------------------------------------------

def all_at_once(bodies: list[dict], send) -> list[requests.Response | Exception]:
    """Send every body from its own thread, released together; each answer (or error) in order."""
    gate = threading.Barrier(len(bodies))
    answers: list = [None] * len(bodies)

    def one(index: int) -> None:
        gate.wait(timeout=30)
        try:
            answers[index] = send(bodies[index])
        except Exception as exc:  # reported by the assertions, not lost in a thread
            answers[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a request never finished"
    return answers


def failure(url: str, moment: datetime, uid: str | None = None) -> dict:
    return {"target_url": url, "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "is_success": False, "status_code": 503, "response_time_ms": 40,
            "error_message": "HTTP 503 Service Unavailable", "event_uid": uid or str(uuid.uuid4())}


def test_fifty_concurrent_failures_at_four_workers_open_one_alert_and_store_one_copy_per_uid(tmp_path):
    server = Gunicorn(tmp_path, BACKEND_WORKERS="4", FAILURE_THRESHOLD="3", NOTIFY_TIMEOUT_SECONDS="1")
    try:
        wait_healthy(server.url, server.proc, timeout=40)
        url = "https://storm.example/"
        # Fifty distinct check times, applied in whatever order the workers win their turns: the
        # ones that arrive late still count in check-time order, so exactly one alert opens.
        first = datetime.now(timezone.utc) - timedelta(minutes=1)
        storm = [failure(url, first + timedelta(milliseconds=10 * n)) for n in range(50)]
        answers = all_at_once(storm, server.post)
        codes = [a.status_code if isinstance(a, requests.Response) else repr(a) for a in answers]
        assert codes == [201] * 50

        assert server.rows("SELECT COUNT(*), COUNT(DISTINCT event_uid) FROM events WHERE target_url = ?",
                           url) == [(50, 50)]
        alerts = server.rows("SELECT id, alert_type, status FROM alerts WHERE target_url = ?", url)
        assert len(alerts) == 1 and alerts[0][1:] == ("ERROR", "OPEN")
        alert_id = alerts[0][0]
        wait_until(lambda: server.rows("SELECT COUNT(*) FROM deliveries WHERE status = 'PENDING'")[0][0] == 0, 20,
                   message="the dispatcher idle")
        assert server.rows("SELECT alert_id, channel, notice_type, status FROM deliveries") == [
            (alert_id, "CONSOLE", "ERROR", "SENT")]
        assert server.rows("SELECT alert_id, channel, notice_type, status, retry_count FROM notification_logs") == [
            (alert_id, "CONSOLE", "ERROR", "SENT", 0)]
        console_blocks = text_of(server.log_path).count(f"[ALERT] ERROR - {url}")
        assert console_blocks == 1

        same = failure("https://same-uid.example/", datetime.now(timezone.utc), str(uuid.uuid4()))
        answers = all_at_once([dict(same) for _ in range(50)], server.post)
        codes = sorted(a.status_code if isinstance(a, requests.Response) else repr(a) for a in answers)
        stored = server.rows("SELECT COUNT(*) FROM events WHERE event_uid = ?", same["event_uid"])[0][0]
        figures.record("50 concurrent failures, 4 workers", sent=50, stored=50, duplicated=0, lost=0,
                       note=f"alerts: {len(alerts)}, console blocks: {console_blocks}")
        figures.record("50 concurrent posts of one uid", sent=50, stored=stored, duplicated=max(0, stored - 1),
                       lost=1 - min(stored, 1), note=f"answers: {codes.count(201)}x201, {codes.count(200)}x200")
        assert codes == [200] * 49 + [201]
        bodies = [a.json() for a in answers]
        assert sum(1 for b in bodies if b["duplicate"]) == 49
        assert len({b["event_id"] for b in bodies}) == 1
        assert stored == 1
        assert "Traceback" not in text_of(tmp_path / "gunicorn.out")
        assert server.stop() == 0
        assert_no_secret_in_any_file(tmp_path, server.env["API_KEY"])
    finally:
        server.stop()


def test_failures_arriving_out_of_check_time_order_still_open_an_alert(tmp_path):
    backend = Backend(tmp_path, FAILURE_THRESHOLD="3").start()
    try:
        base = datetime.now(timezone.utc) - timedelta(minutes=1)
        # The newest failure arrives first (a concurrent POST that won the race), then three older ones.
        for offset in (10, 1, 2, 3):
            answer = backend.api("POST", "/events", json=failure("https://late.example/",
                                                                 base + timedelta(seconds=offset)))
            assert answer.status_code == 201
        alerts = count(backend, "SELECT COUNT(*) FROM alerts")
        figures.record("4 failures out of check-time order", sent=4, stored=count(backend, "SELECT COUNT(*) FROM events"),
                       duplicated=0, lost=0, note=f"alerts opened: {alerts} (4 failures in a row, threshold 3)")
        assert alerts == 1
    finally:
        backend.stop()
