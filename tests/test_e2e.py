"""End to end: the real backend and agent as processes, a real target site, the real SQLite file."""

import re

import pytest

from tests.support.procs import (Backend, assert_no_secret_in_any_file, base_env, free_port, run_to_exit, start,
                                 stop, wait_until)

INTERVAL = "0.3"
TIMEOUT = "1"


@pytest.fixture
def backend(tmp_path):
    server = Backend(tmp_path, FAILURE_THRESHOLD="3").start()
    yield server
    server.stop()


@pytest.fixture
def run_agent(tmp_path, backend):
    """Start `python agent/agent.py` against the backend; stopped by PID at teardown."""
    procs = []

    def _run(target_url: str, *args: str, **env: str):
        agent_env = base_env(tmp_path, TARGET_URL=target_url, BACKEND_URL=backend.url,
                             CHECK_INTERVAL_SECONDS=INTERVAL, REQUEST_TIMEOUT_SECONDS=TIMEOUT, **env)
        proc = start(["agent/agent.py", *args], agent_env, tmp_path / "agent.out")
        procs.append(proc)
        return proc

    yield _run
    for proc in procs:
        stop(proc)


def count(backend: Backend, sql: str, *params) -> int:
    return backend.rows(sql, *params)[0][0]


def test_healthy_target_is_stored_and_raises_nothing(backend, run_agent, target, tmp_path):
    run_agent(target.url)
    wait_until(lambda: count(backend, "SELECT COUNT(*) FROM events") >= 3, 15, message="3 events")
    rows = backend.rows("SELECT target_url, status_code, is_success, error_message, response_time_ms, timestamp "
                        "FROM events")
    assert all(r[:4] == (target.url, 200, 1, None) for r in rows)
    assert all(r[4] is not None and r[4] >= 0 for r in rows)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r[5]) for r in rows)
    assert count(backend, "SELECT COUNT(*) FROM alerts") == 0
    agent_log = (tmp_path / "agent.log").read_text()
    assert re.search(rf"^\[\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\] \[INFO\] check {re.escape(target.url)} -> 200",
                     agent_log, re.M)


def test_outage_opens_one_alert_then_recovery_resolves_it(backend, run_agent, target):
    target.set_status(503)
    run_agent(target.url)
    # Well past the threshold: dedup must hold however long the outage lasts.
    wait_until(lambda: count(backend, "SELECT COUNT(*) FROM events") >= 8, 20, message="8 failed checks")
    alerts = backend.rows("SELECT id, event_id, alert_type, status FROM alerts")
    assert len(alerts) == 1
    alert_id, event_id, alert_type, status = alerts[0]
    third_failure = backend.rows("SELECT id FROM events ORDER BY id LIMIT 1 OFFSET 2")[0][0]
    assert (event_id, alert_type, status) == (third_failure, "ERROR", "OPEN")
    wait_until(lambda: "Status: 503 Service Unavailable" in backend.log_text(), 10, message="console block")
    assert re.search(rf"^\[\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d\] \[ALERT\] ERROR - {re.escape(target.url)}\n"
                     r"Status: 503 Service Unavailable\nResponse Time: \d+ms\nMessage: Service is down$",
                     backend.log_text(), re.M)

    target.set_status(200)
    wait_until(lambda: backend.rows("SELECT status FROM alerts")[0][0] == "RESOLVED", 15, message="recovery")
    wait_until(lambda: "[ALERT] RECOVERY" in backend.log_text(), 10, message="recovery block")
    assert re.search(rf"\[ALERT\] RECOVERY - {re.escape(target.url)}\nStatus: 200 OK\nResponse Time: \d+ms\n"
                     r"Message: Service has been recovered", backend.log_text())
    # The block is written before its row is recorded: wait for the row, not only the text.
    wait_until(lambda: count(backend, "SELECT COUNT(*) FROM notification_logs") == 2, 10, message="two rows")
    assert backend.rows("SELECT channel, notice_type, status, retry_count FROM notification_logs "
                        "WHERE alert_id = ? ORDER BY id", alert_id) == [
        ("CONSOLE", "ERROR", "SENT", 0), ("CONSOLE", "RECOVERY", "SENT", 0)]
    assert backend.rows("SELECT resolved_at IS NOT NULL FROM alerts") == [(1,)]


def test_hanging_target_is_a_timeout_alert(backend, run_agent, target):
    target.hang()
    run_agent(target.url)
    wait_until(lambda: count(backend, "SELECT COUNT(*) FROM alerts") == 1, 20, message="a timeout alert")
    errors = {r[0] for r in backend.rows("SELECT error_message FROM events WHERE status_code IS NULL")}
    assert errors == {"Request timed out after 1000ms"}
    wait_until(lambda: "Status: Timeout" in backend.log_text(), 10, message="Timeout console block")


def test_closed_port_is_a_connection_failure_alert(backend, run_agent):
    url = f"http://127.0.0.1:{free_port()}/"
    run_agent(url)
    wait_until(lambda: count(backend, "SELECT COUNT(*) FROM alerts") == 1, 20, message="a connection alert")
    errors = backend.rows("SELECT DISTINCT error_message, status_code FROM events")
    assert len(errors) == 1 and errors[0][1] is None and "onnection" in errors[0][0]


def test_acknowledged_alert_stays_single_and_still_recovers(backend, run_agent, target):
    target.set_status(500)
    run_agent(target.url)
    alert_id = wait_until(lambda: (backend.rows("SELECT id FROM alerts") or [[None]])[0][0], 20, message="alert")
    answer = backend.api("PATCH", f"/alerts/{alert_id}", json={"status": "ACK"})
    assert answer.status_code == 200 and answer.json()["status"] == "ACK"
    events_at_ack = count(backend, "SELECT COUNT(*) FROM events")
    wait_until(lambda: count(backend, "SELECT COUNT(*) FROM events") >= events_at_ack + 4, 15, message="more checks")
    assert backend.rows("SELECT id, status FROM alerts") == [(alert_id, "ACK")]

    target.set_status(200)
    wait_until(lambda: backend.rows("SELECT status FROM alerts")[0][0] == "RESOLVED", 15, message="recovery")
    wait_until(lambda: count(backend, "SELECT COUNT(*) FROM notification_logs WHERE notice_type = 'RECOVERY'") == 1,
               10, message="RECOVERY notification")
    assert backend.api("PATCH", f"/alerts/{alert_id}", json={"status": "ACK"}).status_code == 409


def test_seed_timeline_leaves_the_seed_tables(tmp_path, target):
    """SPEC §5: with FAILURE_THRESHOLD=1, success, failure, failure, success on one URL."""
    backend = Backend(tmp_path, FAILURE_THRESHOLD="1").start()
    try:
        env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url, REQUEST_TIMEOUT_SECONDS=TIMEOUT)
        for status in (200, 503, 503, 200):
            target.set_status(status)
            assert run_to_exit(["agent/agent.py", "--once"], env, tmp_path / "agent.out") == 0
        wait_until(lambda: count(backend, "SELECT COUNT(*) FROM notification_logs") == 2, 10,
                   message="two console rows")
        assert count(backend, "SELECT COUNT(*) FROM events") == 4
        assert backend.rows("SELECT alert_type, status, event_id FROM alerts") == [("ERROR", "RESOLVED", 2)]
        assert backend.rows("SELECT alert_id, channel, notice_type, status FROM notification_logs ORDER BY id") == [
            (1, "CONSOLE", "ERROR", "SENT"), (1, "CONSOLE", "RECOVERY", "SENT")]
    finally:
        backend.stop()


def test_telegram_gets_the_outage_and_the_recovery(tmp_path, target, telegram):
    backend = Backend(tmp_path, FAILURE_THRESHOLD="1", TELEGRAM_BOT_TOKEN="12345:secret-token",
                      TELEGRAM_CHAT_ID="777", TELEGRAM_API_BASE_URL=telegram.base_url).start()
    try:
        env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url)
        for status in (503, 200):
            target.set_status(status)
            assert run_to_exit(["agent/agent.py", "--once"], env, tmp_path / "agent.out") == 0
        wait_until(lambda: len(telegram.sent_messages()) == 2, 15, message="two Telegram messages")
        down, up = telegram.sent_messages()
        assert down["chat_id"] == "777" and down["text"].startswith("🚨 서비스 장애 알림\n\nURL: " + target.url)
        assert "상태: 503 Service Unavailable" in down["text"]
        assert up["text"].startswith("✅ 서비스 복구 알림")
        wait_until(lambda: count(backend, "SELECT COUNT(*) FROM notification_logs WHERE channel='TELEGRAM'") == 2,
                   10, message="Telegram rows")
        rows = backend.rows("SELECT status, message_id FROM notification_logs WHERE channel = 'TELEGRAM' ORDER BY id")
        assert rows == [("SENT", str(down["message_id"])), ("SENT", str(up["message_id"]))]
        assert "secret-token" not in backend.log_text()
    finally:
        backend.stop()


def test_backend_refuses_to_start_without_an_api_key(tmp_path):
    env = base_env(tmp_path, API_KEY="")
    assert run_to_exit(["backend/app.py"], env, tmp_path / "backend.out") == 2
    assert "API_KEY" in (tmp_path / "backend.out").read_text()


def test_backend_runs_from_its_own_folder(tmp_path):
    """`cd backend && python app.py` resolves files against the repository, not the cwd."""
    import subprocess
    import sys
    from tests.support.procs import ROOT, wait_healthy
    backend = Backend(tmp_path)
    out = open(tmp_path / "backend.out", "ab")
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT / "backend", env=backend.env, stdout=out,
                            stderr=subprocess.STDOUT)
    out.close()
    try:
        wait_healthy(backend.url, proc)
    finally:
        assert stop(proc) == 0


def test_agent_retries_until_a_late_backend_answers(tmp_path, target):
    """The backend is down when the agent sends, and comes up a moment later: the event arrives."""
    backend = Backend(tmp_path)
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url)
    agent = start(["agent/agent.py", "--once"], env, tmp_path / "agent.out")
    try:
        wait_until(lambda: "retrying in" in (tmp_path / "agent.log").read_text(errors="replace")
                   if (tmp_path / "agent.log").exists() else False, 15, message="a failed first send")
        backend.start()
        assert agent.wait(timeout=30) == 0
        assert backend.rows("SELECT target_url, status_code FROM events") == [(target.url, 200)]
    finally:
        stop(agent)
        backend.stop()


def test_secrets_never_reach_a_log(backend, run_agent, target, tmp_path):
    target.set_status(503)
    run_agent(target.url)
    wait_until(lambda: count(backend, "SELECT COUNT(*) FROM notification_logs") >= 1, 20, message="an alert")
    assert backend.api("GET", "/alerts", headers={"X-API-Key": "wrong"}).status_code == 401
    assert_no_secret_in_any_file(tmp_path, backend.env["API_KEY"])
