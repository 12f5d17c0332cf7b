"""Missed deadlines with real backend processes (SPEC §8, §9): a pinger that stops, restarts, an agent that stops."""

from __future__ import annotations

import os
import re
import signal
import threading
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.support.procs import Backend, base_env, start, stop, wait_until
from tests.support.servers import TargetServer

PUSH = "targets:\n  - {name: nightly, kind: push, period: %s, grace: %s}\n"
SILENT = "SELECT checked_at FROM events WHERE target = 'nightly' AND is_success = 0 ORDER BY checked_at"


class Pinger:
    """A cron-like job: GET <ping_url> every `every` seconds in a thread, until stopped."""

    def __init__(self, url: str, every: float):
        self.url, self.every = url, every
        self.pings = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="pinger")

    def start(self) -> "Pinger":
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if requests.get(self.url, timeout=2).status_code == 200:
                    self.pings += 1
            except requests.RequestException:
                pass  # the backend is down: cron's curl fails too
            self._stopping.wait(self.every)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)


def load_push(backend: Backend, tmp_path, period: float, grace: float) -> str:
    """Put the push target in the file now (its deadline counts from this load); return its ping URL."""
    (tmp_path / "targets.yaml").write_text(PUSH % (period, grace), encoding="utf-8")
    assert backend.api("POST", "/targets/reload").status_code == 200
    [target] = backend.api("GET", "/targets").json()["targets"]
    return target["ping_url"]


def alerts(backend: Backend) -> list[tuple]:
    return backend.rows("SELECT status, message FROM alerts WHERE target_url = 'push://nightly' ORDER BY id")


def times(backend: Backend) -> list[datetime]:
    return [datetime.fromisoformat(row[0]) for row in backend.rows(SILENT)]


def assert_spaced(moments: list[datetime], window: float) -> None:
    """One failed event per missed deadline: each counts from the one before, none is stored twice."""
    gaps = [(b - a).total_seconds() for a, b in zip(moments, moments[1:])]
    assert all(gap >= window - 0.01 for gap in gaps), gaps


def test_a_pinger_that_stops_opens_one_error_across_two_backends_and_the_next_ping_resolves_it(tmp_path):
    first = Backend(tmp_path).start()
    second = Backend(tmp_path).start()  # the same database: either may hold the timer's lease
    pinger = None
    try:
        url = load_push(first, tmp_path, 1, 0.5)
        token = url.rsplit("/", 1)[1]
        pinger = Pinger(url, 0.25).start()
        wait_until(lambda: pinger.pings >= 6, 10, message="six pings")
        assert alerts(first) == []  # pinged in time: no alert
        pinger.stop()

        wait_until(lambda: alerts(first), 10, message="the missed-ping alert")
        assert alerts(first) == [("OPEN", "Service is down: no ping for 1.5 s")]
        first.stop()  # the other process carries on (the lease passes if the first held it)
        wait_until(lambda: len(times(second)) >= 3, 15, message="three missed deadlines")
        assert alerts(second) == [("OPEN", "Service is down: no ping for 1.5 s")]  # deduplicated
        assert_spaced(times(second), 1.5)

        assert requests.post(url.replace(first.url, second.url), timeout=5).json() == {"ok": True}
        assert alerts(second) == [("RESOLVED", "Service is down: no ping for 1.5 s")]
    finally:
        if pinger:
            pinger.stop()
        first.stop()
        second.stop()
    log = first.log_text()
    assert "push target nightly: no ping for 1.5 s" in log
    assert token not in log and token not in (tmp_path / "backend.out").read_text(encoding="utf-8")


def test_a_restarted_backend_gives_pings_their_grace_and_still_reports_a_deadline_missed_while_down(tmp_path):
    backend = Backend(tmp_path).start()
    pause = threading.Event()
    try:
        url = load_push(backend, tmp_path, 1, 2)  # a deadline 3 s after each ping
        wait_until(lambda: backend.rows("SELECT beat_at FROM deadline_timer")[0][0], 10, message="a heartbeat")
        assert requests.get(url, timeout=5).status_code == 200
        # The backend is down while the deadline passes: the job's run in that time could not be heard.
        backend.stop()
        pause.wait(3.2)
        backend.start()
        wait_until(lambda: "deadline timer resumes after" in backend.log_text(), 10, message="the timer resuming")
        pause.wait(1.2)  # another pass: the deadline is now the restart plus the grace (2 s)
        assert alerts(backend) == [] and times(backend) == []  # no false alert
        assert requests.get(url, timeout=5).status_code == 200  # the job's next run, within the grace

        # Now the job stays silent, and its deadline passes while the backend is down again: reported
        # once the restart's grace is over, not skipped, not doubled.
        backend.stop()
        pause.wait(3.2)
        backend.start()
        wait_until(lambda: alerts(backend), 10, message="the missed-ping alert after the restart")
        assert [status for status, _ in alerts(backend)] == ["OPEN"]
        assert_spaced(times(backend), 3)
    finally:
        backend.stop()
    assert backend.log_text().count("deadline timer resumes after") == 2


@pytest.fixture
def site():
    server = TargetServer().start()
    yield server
    server.stop()


def test_an_http_target_whose_agent_stops_opens_no_results_and_its_restart_resolves_it(tmp_path, site):
    (tmp_path / "targets.yaml").write_text(
        f"targets:\n  - {{name: shop, url: '{site.url}', interval: 0.3, timeout: 0.5}}\n", encoding="utf-8")
    backend = Backend(tmp_path, AGENT_REFRESH_SECONDS="3").start()
    env = base_env(tmp_path, TARGET_URL="", BACKEND_URL=backend.url, AGENT_NAME="box-1",
                   AGENT_TARGETS_CACHE=str(tmp_path / "cache.json"))
    agent = start(["agent/agent.py"], env, tmp_path / "agent.out")
    query = "SELECT status, message FROM alerts WHERE target_url = ?"
    try:
        wait_until(lambda: backend.rows("SELECT 1 FROM events WHERE agent = 'box-1'"), 30, message="results")
        assert stop(agent) == 0
        wait_until(lambda: backend.rows(query, site.url), 10, message="the no-results alert")
        # 3 x interval + timeout (1.4 s) after its last result, or later: the agent's first refresh after
        # the load, and the time a freshly started backend gives agents, come first.
        [(status, message)] = backend.rows(query, site.url)
        assert status == "OPEN" and re.fullmatch(r"Service is down: no results for [0-9.]+ s", message), message

        agent = start(["agent/agent.py"], env, tmp_path / "agent.out")
        wait_until(lambda: backend.rows(query, site.url)[0][0] == "RESOLVED", 30, message="the recovery")
    finally:
        stop(agent)
        backend.stop()
    assert f"http target shop: {message.removeprefix('Service is down: ')}" in backend.log_text()


class SlowClockAgent:
    """An agent whose clock is `behind` seconds slow: POSTs a success for `shop` every `every` seconds."""

    def __init__(self, backend: Backend, url: str, every: float, behind: float):
        self.backend, self.url, self.every, self.behind = backend, url, every, behind
        self.sent = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="slow-clock-agent")
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            moment = datetime.now(timezone.utc) - timedelta(seconds=self.behind)
            item = {"target_url": self.url, "target": "shop", "agent": "box-1", "is_success": True,
                    "status_code": 200, "response_time_ms": 5, "error_message": None,
                    "timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
            if self.backend.api("POST", "/events", json=[item]).status_code == 200:
                self.sent += 1
            self._stopping.wait(self.every)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=15)


def test_an_agent_whose_clock_is_behind_raises_no_false_alert_and_its_target_recovers(tmp_path):
    url = "http://127.0.0.1:9/health"
    (tmp_path / "targets.yaml").write_text(
        f"targets:\n  - {{name: shop, url: '{url}', interval: 0.3, timeout: 0.5}}\n", encoding="utf-8")
    backend = Backend(tmp_path, AGENT_REFRESH_SECONDS="1").start()
    query = "SELECT status, message FROM alerts WHERE target = 'shop'"
    pause = threading.Event()
    agent = SlowClockAgent(backend, url, 0.3, 120)
    try:
        # Longer than the restart allowance (refresh + one window, 2.4 s) and many windows (1.4 s).
        pause.wait(5)
        assert backend.rows(query) == []  # heard from all along: no "no results for 2 min"
        agent.stop()
        wait_until(lambda: backend.rows(query), 10, message="the no-results alert")
        assert backend.rows(query) == [("OPEN", "Service is down: no results for 1.4 s")]
        agent = SlowClockAgent(backend, url, 0.3, 120)
        wait_until(lambda: backend.rows(query)[0][0] == "RESOLVED", 10, message="the recovery")
    finally:
        agent.stop()
        backend.stop()
    # The missed deadline is stamped in the target's own check times: after the last check before
    # the silence, before the first one after it, so the agent's next result is in order, not late.
    rows = backend.rows("SELECT is_success, is_late FROM events WHERE target = 'shop' ORDER BY checked_at, id")
    assert [ok for ok, _ in rows].count(0) >= 1 and all(late == 0 for _, late in rows), rows
    first_failure = [ok for ok, _ in rows].index(0)
    assert all(ok == 1 for ok, _ in rows[:first_failure]) and rows[-1][0] == 1


def test_a_lease_takeover_is_not_taken_for_a_backend_outage(tmp_path):
    first = Backend(tmp_path).start()
    holder = "SELECT holder FROM leases WHERE name = 'deadlines'"
    wait_until(lambda: first.rows(holder), 10, message="the first backend holding the timer's lease")
    [(first_holder,)] = first.rows(holder)
    second = Backend(tmp_path).start()
    pause = threading.Event()
    try:
        pause.wait(1.5)  # the second one's timer runs its passes too
        [(resumed,)] = first.rows("SELECT resumed_at FROM deadline_timer")
        # The holder hangs (a stuck gunicorn worker): its lease expires and the second backend takes
        # over, though it served requests all along. No deadline may move to "restart + grace".
        os.kill(first.proc.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: first.rows(holder)[0][0] != first_holder, 20, message="the takeover")
            pause.wait(1.5)  # a pass after it
        finally:
            os.kill(first.proc.pid, signal.SIGCONT)
        assert first.rows("SELECT resumed_at FROM deadline_timer") == [(resumed,)]
    finally:
        first.stop()
        second.stop()
    assert "deadline timer resumes after" not in first.log_text()
