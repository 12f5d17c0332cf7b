"""The agent as a real process: --once exit codes, log format, bad config, the loop, SIGTERM, the spool (SPEC §7)."""

from __future__ import annotations

import logging
import re
import sqlite3
import subprocess
import sys
import time

import pytest

from agent.log_setup import log_file_handler
from agent.config import load_settings
from tests.support.procs import ROOT, free_port, run_to_exit, start, stop, wait_until
from tests.support.procs import base_env as _base_env
from tests.support.connect_proxy import ConnectProxy
from tests.support.servers import TargetServer
from tests.support.tls import issue, serve_tls
from tests.support.fake_backend import FakeBackend, backend, refusal  # noqa: F401

API_KEY = "test-key-0123456789"
LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[(INFO|WARNING|ERROR)\] ")


def base_env(tmp_path, **overrides):
    """The shared test environment, plus a spool file of this test's own."""
    return _base_env(tmp_path, **{"AGENT_SPOOL_FILE": str(tmp_path / "spool.db"), **overrides})


def spooled_uids(tmp_path) -> list[str]:
    """The event_uids waiting in the spool file, oldest first, read the way a user would."""
    path = tmp_path / "spool.db"
    if not path.exists():
        return []
    db = sqlite3.connect(path, timeout=10)
    try:
        return [uid for (uid,) in db.execute("SELECT event_uid FROM spooled_events ORDER BY id")]
    except sqlite3.OperationalError:  # the agent has created the file but not yet its table
        return []
    finally:
        db.close()



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
    [body] = request["body"]
    assert (body["target_url"], body["is_success"], body["status_code"]) == (target.url, True, 200)
    assert isinstance(body["response_time_ms"], int) and body["error_message"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["timestamp"])
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", body["event_uid"])
    assert spooled_uids(tmp_path) == []

    lines = log_text(tmp_path).splitlines()
    assert lines and all(LOG_LINE.match(line) for line in lines), lines
    text = "\n".join(lines)
    assert f"agent started: 1 target once ({target.url}), sending to {backend.url}" in text
    assert re.search(rf"\[INFO\] check {re.escape(target.url)} -> 200 in \d+ms", text)
    assert f"[INFO] send 1 result to {backend.url}/events attempt 1/4 -> 201" in text
    assert "TARGET_URL is not set" not in text
    assert lines[-1].endswith("[INFO] agent stopped")
    assert API_KEY not in text
    assert API_KEY not in (tmp_path / "agent.out").read_text()


def test_a_ca_bundle_and_an_https_proxy_set_only_in_the_env_file_reach_the_checks(backend, agents, tmp_path):
    ca = issue(tmp_path, "ca", days=30, is_ca=True)
    site = serve_tls(TargetServer(), issue(tmp_path, "site", days=3, issuer=ca)).start()
    proxy = ConnectProxy().start()
    try:
        env_file = tmp_path / "agent.env"
        env_file.write_text(f"CURL_CA_BUNDLE={ca.cert}\nhttps_proxy={proxy.url}\n", encoding="utf-8")
        env = {k: v for k, v in base_env(tmp_path, TARGET_URL=site.url, BACKEND_URL=backend.url).items()
               if k not in ("CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE") and not k.lower().endswith("_proxy")}
        proc = agents.start({**env, "ENV_FILE": str(env_file)}, "--once")
        assert proc.wait(timeout=30) == 0
    finally:
        proxy.stop()
        site.stop()
    [body] = backend.received()[0]["body"]
    assert (body["is_success"], body["status_code"], body["error_message"]) == (True, 200, None)
    assert proxy.connects == [site.url[len("https://"):].rstrip("/")]


def test_once_runs_from_inside_the_agent_folder_too(target, backend, tmp_path):
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url)
    done = subprocess.run([sys.executable, "agent.py", "--once"], cwd=ROOT / "agent", env=env,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert len(backend.received()) == 1


def test_once_exits_1_and_drops_an_event_the_backend_rejects_alone(target, backend, agents, tmp_path):
    backend.status = refusal("invalid_event")
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url)
    proc = agents.start(env, "--once")
    assert proc.wait(timeout=30) == 1
    assert len(backend.received()) == 1  # a 400 is not retried
    text = log_text(tmp_path)
    assert re.search(r"\[ERROR\] send 1 result to .* attempt 1/4 -> 400 \(invalid_event\), not retried: "
                     r"scripted invalid_event", text)
    assert re.search(r"\[ERROR\] dropped invalid result [0-9a-f-]{36} for .*: scripted invalid_event "
                     r"\(1 invalid result dropped since start\)", text)
    assert "[ERROR] round done: spool empty, but 1 result dropped" in text
    assert spooled_uids(tmp_path) == []  # invalid forever: kept, it would block every later event


@pytest.mark.parametrize("answer", [
    pytest.param(refusal("clock_skew"), id="clock_skew"),
    pytest.param(refusal("unknown_field"), id="unknown_field"),
    pytest.param(400, id="400 without a code"),
    pytest.param(403, id="403"),
    pytest.param(404, id="404"),
])
def test_once_keeps_a_result_refused_for_another_reason_and_the_next_once_delivers_it(
        target, backend, agents, tmp_path, answer):
    backend.status = answer
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url)
    assert agents.start(env, "--once").wait(timeout=30) == 1
    [kept] = spooled_uids(tmp_path)
    text = log_text(tmp_path)
    assert re.search(rf"\[ERROR\] send: {re.escape(backend.url)}/events answered 4\d\d.*: 1 result kept in "
                     rf"the spool, 1 waiting", text)
    assert f"[ERROR] round done: 1 result stays in the spool {tmp_path / 'spool.db'} for the next run" in text
    assert "dropped" not in text

    backend.status = 201  # the backend now takes it
    assert agents.start(env, "--once").wait(timeout=30) == 0
    assert [e["event_uid"] for e in backend.stored_events()][0] == kept
    assert len(backend.stored_events()) == 2 and spooled_uids(tmp_path) == []


def test_once_reports_a_failed_check_as_an_event(target, backend, agents, tmp_path):
    target.set_status(503)
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url)
    proc = agents.start(env, "--once")
    assert proc.wait(timeout=30) == 0
    [request] = backend.received()
    assert request["body"][0]["is_success"] is False
    assert request["body"][0]["error_message"] == "HTTP 503 Service Unavailable"


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
    wait_for_log(tmp_path, f"send 1 result to http://127.0.0.1:{port}/events attempt 1/4 -> Connection failed: "
                           f"connection refused")
    backend = FakeBackend(port=port).start()
    try:
        assert proc.wait(timeout=30) == 0
        assert len(backend.received()) == 1
        assert re.search(rf"\[INFO\] send 1 result to {re.escape(backend.url)}/events attempt [23]/4 -> 201",
                         log_text(tmp_path))
    finally:
        backend.stop()


def test_once_with_the_backend_down_keeps_the_event_and_the_next_once_sends_both(target, agents, tmp_path):
    port = free_port()
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=f"http://127.0.0.1:{port}")
    assert agents.start(env, "--once").wait(timeout=60) == 1  # bounded by the send retries
    [first] = spooled_uids(tmp_path)
    assert f"[ERROR] round done: 1 result stays in the spool {tmp_path / 'spool.db'} for the next run" in log_text(
        tmp_path)

    backend = FakeBackend(port=port).start()
    try:
        assert agents.start(env, "--once").wait(timeout=30) == 0
        sent = [e["event_uid"] for e in backend.received_events()]
        assert len(sent) == 2 and sent[0] == first  # the older event first, each once
        assert spooled_uids(tmp_path) == []
        assert target.hits == 2
    finally:
        backend.stop()


def test_once_against_a_backend_that_always_answers_503_gives_up_and_says_what_stays(
        target, backend, agents, tmp_path):
    backend.status = 503
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url)
    assert agents.start(env, "--once").wait(timeout=60) == 1  # bounded by the send retries
    assert len(backend.received()) == 4
    assert len(spooled_uids(tmp_path)) == 1
    text = log_text(tmp_path)
    assert "attempt 4/4 -> 503, giving up after 4 attempts" in text
    assert f"[ERROR] round done: 1 result stays in the spool {tmp_path / 'spool.db'} for the next run" in text


def test_a_second_agent_on_the_same_spool_exits_2_naming_it_and_one_with_its_own_spool_runs(
        target, backend, agents, tmp_path):
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=backend.url, CHECK_INTERVAL_SECONDS="0.5")
    first = agents.start(env)
    wait_for_log(tmp_path, "agent started")
    out = tmp_path / "second.out"
    assert run_to_exit(["agent/agent.py", "--once"], env, out) == 2
    [line] = out.read_text().splitlines()
    assert line == (f"agent not started: the spool {tmp_path / 'spool.db'} is in use by another agent "
                    f"(pid {first.pid}); stop that agent, or set AGENT_SPOOL_FILE to give this one a spool "
                    f"of its own")
    assert run_to_exit(["agent/agent.py"], env, out) == 2  # a second loop too, not only --once
    assert first.poll() is None  # the first one goes on

    own = {**env, "AGENT_SPOOL_FILE": str(tmp_path / "once.db")}
    assert run_to_exit(["agent/agent.py", "--once"], own, tmp_path / "own.out") == 0

    assert stop(first) == 0
    assert run_to_exit(["agent/agent.py", "--once"], env, tmp_path / "after.out") == 0  # the lock died with it
    sent = [e["event_uid"] for e in backend.received_events()]
    assert len(sent) == len(set(sent))  # no result sent twice


def test_an_unset_target_url_says_at_start_that_it_checks_the_backends_list(backend, tmp_path):
    # SPEC §2: unset means the backend's list (§8). This backend serves none and there is no cache:
    # one clear line, nothing checked (no example.com default), and --once says it did not deliver.
    env = base_env(tmp_path, TARGET_URL="", BACKEND_URL=backend.url, AGENT_NAME="box-1",
                   AGENT_TARGETS_CACHE=str(tmp_path / "targets-cache.json"))
    out = tmp_path / "agent.out"
    assert run_to_exit(["agent/agent.py", "--once"], env, out) == 1
    text = log_text(tmp_path)
    assert (f"[INFO] agent box-1 started: TARGET_URL is not set, so it checks the targets the backend serves "
            f"(GET {backend.url}/agent/targets) once, sending to {backend.url}") in text
    assert (f"[ERROR] no targets yet: GET {backend.url}/agent/targets answered 501 and there is no cached list "
            f"at {tmp_path / 'targets-cache.json'}; asking again") in text
    assert "no targets yet" in out.read_text()  # stdout too
    assert "example.com" not in text and "TARGET_URL is not set: checking" not in text
    assert backend.received_events() == []


def test_the_start_line_names_the_first_three_targets_and_counts_the_rest(target, backend, tmp_path):
    urls = [f"{target.url}t/{i}" for i in range(5)]
    env = base_env(tmp_path, TARGET_URL=",".join(urls), BACKEND_URL=backend.url)
    assert run_to_exit(["agent/agent.py", "--once"], env, tmp_path / "agent.out") == 0
    assert (f"agent started: 5 targets once ({urls[0]}, {urls[1]}, {urls[2]} and 2 more), sending to "
            f"{backend.url}") in log_text(tmp_path)
    assert "round done: 5 checks, sending 5 spooled results" in log_text(tmp_path)


def test_results_spooled_while_the_backend_is_down_arrive_exactly_once_after_a_restart(
        target, agents, tmp_path):
    port = free_port()
    env = base_env(tmp_path, TARGET_URL=target.url, BACKEND_URL=f"http://127.0.0.1:{port}",
                   CHECK_INTERVAL_SECONDS="0.2")
    proc = agents.start(env)
    wait_until(lambda: len(spooled_uids(tmp_path)) >= 5, 20, message="five results in the spool")
    began = time.monotonic()
    assert stop(proc, timeout=10) == 0
    assert time.monotonic() - began < 5
    waiting = spooled_uids(tmp_path)
    assert len(waiting) == target.hits  # every check of the first run, none lost at SIGTERM

    backend = FakeBackend(port=port).start()
    try:
        proc = agents.start(env)
        wait_until(lambda: len(backend.received_events()) >= len(waiting) + 3, 20,
                   message="the spooled events and some new ones delivered")
        assert stop(proc, timeout=10) == 0
        wait_until(lambda: len(backend.received_events()) + len(spooled_uids(tmp_path)) == target.hits, 5,
                   message="every check either delivered or still spooled")
        sent = [e["event_uid"] for e in backend.received_events()]
        assert len(sent) == len(set(sent))  # no event twice
        assert sent[:len(waiting)] == waiting  # oldest first
        assert set(sent).isdisjoint(spooled_uids(tmp_path))
        assert "spool holds" in log_text(tmp_path)
    finally:
        backend.stop()


def test_sigterm_commits_every_queued_result_of_many_targets_before_exit(target, agents, tmp_path):
    """Group commit: results wait in memory for milliseconds; a clean stop commits them all."""
    port = free_port()  # the backend is down: every result stays in the spool
    urls = ",".join(f"{target.url}t/{i}" for i in range(40))
    env = base_env(tmp_path, TARGET_URL=urls, BACKEND_URL=f"http://127.0.0.1:{port}",
                   CHECK_INTERVAL_SECONDS="0.4")
    proc = agents.start(env)
    wait_until(lambda: target.hits >= 100, 20, message="a hundred checks")
    assert stop(proc, timeout=10) == 0
    waiting = spooled_uids(tmp_path)
    assert len(waiting) == target.hits  # every check that reached the target, none lost at SIGTERM
    assert len(set(waiting)) == len(waiting)
    assert "not committed" not in log_text(tmp_path)


def test_agent_log_rotates_at_its_size_keeping_the_configured_backups(tmp_path):
    settings = load_settings({"API_KEY": API_KEY, "AGENT_LOG_FILE": str(tmp_path / "agent.log"),
                              "AGENT_LOG_MAX_BYTES": "1000", "AGENT_LOG_BACKUPS": "2"})
    handler = log_file_handler(settings)
    logger = logging.getLogger("tests.rotation")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for n in range(100):
            logger.error("line %03d %s", n, "x" * 40)
    finally:
        logger.removeHandler(handler)
        handler.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["agent.log", "agent.log.1", "agent.log.2"]
    assert all((tmp_path / name).stat().st_size <= 1000 for name in names)
    assert "line 099" in (tmp_path / "agent.log").read_text()
