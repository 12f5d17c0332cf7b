"""The agent as a real process: --once exit codes, log format, bad config, the loop and SIGTERM (SPEC §7)."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from tests.support.procs import ROOT, base_env, free_port, start, stop, wait_until
from tests.support.servers import TargetServer
from tests.test_agent_sender import FakeBackend

API_KEY = "test-key-0123456789"
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[(INFO|WARNING|ERROR)\] ")


@pytest.fixture
def backend():
    server = FakeBackend().start()
    yield server
    server.stop()


@pytest.fixture
def agents(tmp_path):
    """Start agent processes with `agents.start(env, *args)`; every one is stopped by PID afterwards."""
    class Agents(list):
        def start(self, env, *args):
            proc = start(["agent/agent.py", *args], env, tmp_path / "agent.out")
            self.append(proc)
            return proc

    started = Agents()
    yield started
    for proc in started:
        stop(proc)


def log_text(tmp_path) -> str:
    path = tmp_path / "agent.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def wait_for_log(tmp_path, text: str, timeout: float = 15.0) -> None:
    wait_until(lambda: text in log_text(tmp_path), timeout, message=f"{text!r} in agent.log")


def test_once_delivers_the_event_exits_0_and_logs_one_line_per_fact(target, backend, agents, tmp_path):
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url)
    proc = agents.start(env, "--once")
    assert proc.wait(timeout=30) == 0
    [request] = backend.received()
    assert request["headers"]["X-API-Key"] == API_KEY
    body = request["body"]
    assert (body["target_url"], body["is_success"], body["status_code"]) == (target.url, True, 200)
    assert isinstance(body["response_time_ms"], int) and body["error_message"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])

    lines = log_text(tmp_path).splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), lines
    text = "\n".join(lines)
    assert f"agent started: 1 targets once, sending to {backend.url}" in text
    assert re.search(rf"\[INFO\] check {re.escape(target.url)} -> 200 in \d+ms", text)
    assert f"[INFO] send {target.url} attempt 1/4 -> 201" in text
    assert lines[-1].endswith("[INFO] agent stopped")
    assert API_KEY not in text
    assert API_KEY not in (tmp_path / "agent.out").read_text()


def test_once_runs_from_inside_the_agent_folder_too(target, backend, tmp_path):
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url)
    done = subprocess.run([sys.executable, "agent.py", "--once"], cwd=ROOT / "agent", env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert len(backend.received()) == 1


def test_once_exits_1_when_the_backend_rejects_the_event(target, backend, agents, tmp_path):
    backend.status = 400
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url)
    proc = agents.start(env, "--once")
    assert proc.wait(timeout=30) == 1
    assert len(backend.received()) == 1  # a 400 is not retried
    assert re.search(r"\[ERROR\] send .* attempt 1/4 -> 400, not retried: scripted 400", log_text(tmp_path))


def test_once_reports_a_failed_check_as_an_event(target, backend, agents, tmp_path):
    target.set_status(503)
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url)
    proc = agents.start(env, "--once")
    assert proc.wait(timeout=30) == 0
    [request] = backend.received()
    assert request["body"]["is_success"] is False
    assert request["body"]["error_message"] == "HTTP 503 Service Unavailable"


@pytest.mark.parametrize("overrides, key", [
    ({"CHECK_INTERVAL_SECONDS": "abc"}, "CHECK_INTERVAL_SECONDS"),
    ({"TARGET_URL": "example.com"}, "TARGET_URL"),
    ({"API_KEY": ""}, "API_KEY"),
])
def test_invalid_configuration_exits_2_with_one_line_naming_the_key(tmp_path, overrides, key):
    env = base_env(tmp_path, **overrides)
    done = subprocess.run([sys.executable, "agent/agent.py", "--once"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.startswith(f"configuration error: {key}: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""
    assert not (tmp_path / "agent.log").exists()  # nothing started


def test_a_hanging_target_delays_no_other_and_sigterm_stops_the_loop(target, backend, agents, tmp_path):
    slow = TargetServer().start()
    slow.hang()
    try:
        env = base_env(tmp_path, TARGET_URL=f"{target.url},{slow.url}", BACKEND_URL=backend.url,
                       CHECK_INTERVAL_SECONDS="0.2", REQUEST_TIMEOUT_SECONDS="1")
        proc = agents.start(env)
        wait_for_log(tmp_path, "agent started: 2 targets every 0.2s")
        wait_until(lambda: target.hits >= 9, 20, message="nine checks of the fast target")
        # Checked one after the other, both targets would be hit about equally often.
        assert slow.hits * 3 <= target.hits
        wait_for_log(tmp_path, f"check {slow.url} -> failed: Request timed out after 1000ms")
        wait_for_log(tmp_path, f"check {slow.url} skipped: its previous check is still in progress")
        assert proc.poll() is None

        began = time.monotonic()
        assert stop(proc, timeout=10) == 0
        assert time.monotonic() - began < 5
        lines = log_text(tmp_path).splitlines()
        assert all(LOG_LINE.match(line) for line in lines), lines
        assert lines[-1].endswith("[INFO] agent stopped")
    finally:
        slow.stop()


def test_an_event_reaches_a_backend_that_starts_late(target, agents, tmp_path):
    port = free_port()
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=f"http://127.0.0.1:{port}")
    proc = agents.start(env, "--once")
    wait_for_log(tmp_path, f"send {target.url} attempt 1/4 -> Connection failed: connection refused")
    backend = FakeBackend(port=port).start()
    try:
        assert proc.wait(timeout=30) == 0
        assert len(backend.received()) == 1
        assert re.search(rf"\[INFO\] send {re.escape(target.url)} attempt [23]/4 -> 201", log_text(tmp_path))
    finally:
        backend.stop()
