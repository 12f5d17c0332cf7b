"""The spread schedule: targets fall due evenly over the interval, not all at once (SPEC §7)."""

from __future__ import annotations

import datetime as dt
import threading
import time
import types
from collections import Counter
from http.server import BaseHTTPRequestHandler

import pytest
import schedule

from agent.agent import MIN_SLOT_SECONDS, Agent, spread_offsets, spread_slots
from agent.config import load_settings
from agent.monotonic_schedule import MonotonicScheduler
from agent.spool import Spool
from tests.support.fake_backend import backend  # noqa: F401
from tests.support.procs import base_env, start, stop, wait_until
from tests.support.servers import LoopbackServer

API_KEY = "test-key-0123456789"


# --- the pure plan ----------------------------------------------------------------------------

@pytest.mark.parametrize("n, interval, expected", [
    (0, 10, []),
    (1, 10, [0.0]),
    (4, 2, [0.0, 0.5, 1.0, 1.5]),           # fewer targets than slots: one slot each
    (3, 0.04, [0.0, 0.0, 0.0]),             # an interval shorter than a slot: one slot for all
])
def test_small_plans(n, interval, expected):
    assert spread_offsets(n, interval) == pytest.approx(expected)


def test_1000_targets_over_10s_fill_200_slots_50ms_apart_five_each_in_order():
    offsets = spread_offsets(1000, 10.0)
    assert len(offsets) == 1000
    assert offsets == sorted(offsets)  # target i is never due before target i-1
    assert offsets[0] == 0 and max(offsets) < 10.0
    per_slot = Counter(offsets)
    assert len(per_slot) == round(10.0 / MIN_SLOT_SECONDS) == 200
    assert set(per_slot.values()) == {5}
    steps = sorted(per_slot)
    assert all(b - a == pytest.approx(0.05) for a, b in zip(steps, steps[1:]))


@pytest.mark.parametrize("n, interval", [(7, 1.0), (10_000, 10.0), (999, 3.3), (37, 30.0)])
def test_every_slot_is_used_and_no_slot_holds_more_than_one_target_over_the_fair_share(n, interval):
    slots = spread_slots(n, interval)
    count = max(slots) + 1
    assert count == min(n, int(interval / MIN_SLOT_SECONDS + 1e-9))
    sizes = Counter(slots)
    assert set(sizes) == set(range(count))
    assert max(sizes.values()) - min(sizes.values()) <= 1


def test_the_agent_makes_one_schedule_job_per_slot_each_first_due_at_its_offset(tmp_path):
    urls = ",".join(f"http://127.0.0.1:9/t/{i}" for i in range(10))
    settings = load_settings({"API_KEY": API_KEY, "TARGET_URL": urls, "CHECK_INTERVAL_SECONDS": "2",
                              "AGENT_SPOOL_FILE": str(tmp_path / "spool.db")})
    spool = Spool(settings.spool_file, settings.spool_max_events)
    agent = Agent(settings, threading.Event(), spool)
    try:
        start = 1000.0
        scheduler = agent.spread_schedule(lambda: start)
        assert len(scheduler.jobs) == 10
        due = sorted((job.next_run - scheduler.at(start)).total_seconds() for job in scheduler.jobs)
        assert due == pytest.approx([i * 0.2 for i in range(10)], abs=1e-3)
        assert all((job.interval, job.unit) == (2.0, "seconds") for job in scheduler.jobs)
    finally:
        agent.shutdown()


# --- the monotonic clock: a wall-clock step moves no check -------------------------------------

class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, reading: float = 500.0):
        self.reading = reading

    def __call__(self) -> float:
        return self.reading


def test_monotonic_jobs_fall_due_by_the_injected_clock_and_repeat_every_interval():
    clock, runs = FakeClock(), []
    scheduler = MonotonicScheduler(clock)
    scheduler.every(0.5).seconds.do(lambda: runs.append(clock()))
    assert scheduler.idle_seconds == pytest.approx(0.5)
    scheduler.run_pending()
    assert runs == []
    for _ in range(4):
        clock.reading += 0.5
        scheduler.run_pending()
    assert runs == [500.5, 501.0, 501.5, 502.0]
    assert scheduler.idle_seconds == pytest.approx(0.5)


def test_a_late_run_does_not_move_the_next_one_and_one_far_behind_skips_to_its_next_planned_time():
    clock, runs = FakeClock(10.0), []
    scheduler = MonotonicScheduler(clock)
    job = scheduler.every(1).seconds.do(lambda: runs.append(clock()))
    job.next_run = scheduler.at(10.0)
    for reading in (10.3, 11.05, 12.9, 15.5, 16.0):
        clock.reading = reading
        scheduler.run_pending()
    assert runs == [10.3, 11.05, 12.9, 15.5, 16.0]  # one run each time: no catching up in a burst
    assert job.next_run == scheduler.at(17.0)  # still on 10.0 + k seconds after 0.3 s, 0.9 s, 2.5 s late


def test_monotonic_jobs_refuse_wall_clock_ideas():
    scheduler = MonotonicScheduler(FakeClock())
    with pytest.raises(schedule.ScheduleValueError):
        scheduler.every().day.at("10:00").do(print)


@pytest.fixture
def wall_clock(monkeypatch):
    """The wall clock as the `schedule` library reads it (`datetime.datetime.now()`), stepped by the test.

    Only `schedule`'s view is moved: stepping the machine's clock would move every other test's too.
    """
    step = [dt.timedelta(0)]

    class SteppedDatetime(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return dt.datetime.now(tz) + step[0]

    stepped = types.SimpleNamespace(**vars(dt))
    stepped.datetime = SteppedDatetime
    monkeypatch.setattr(schedule, "datetime", stepped)

    class WallClock:
        def step(self, delta: dt.timedelta) -> None:
            step[0] += delta
    return WallClock()


def test_a_wall_clock_step_back_of_an_hour_does_not_stall_the_checks(site, wall_clock, tmp_path):
    """A DST fall-back or a clock stepped back by NTP: checks go on at their interval."""
    urls = ",".join(f"{site.url}/t/{i}" for i in range(2))
    settings = load_settings({"API_KEY": API_KEY, "TARGET_URL": urls, "CHECK_INTERVAL_SECONDS": "0.2",
                              "BACKEND_URL": "http://127.0.0.1:9", "AGENT_SPOOL_FILE": str(tmp_path / "spool.db")})
    agent = Agent(settings, threading.Event(), Spool(settings.spool_file, settings.spool_max_events))
    loop = threading.Thread(target=agent.run_forever, daemon=True)  # the agent's own loop
    loop.start()
    try:
        wait_until(lambda: len(site.arrivals) >= 4, 15, message="four checks before the step")
        wall_clock.step(-dt.timedelta(hours=1))
        before = len(site.arrivals)
        wait_until(lambda: len(site.arrivals) >= before + 6, 15,
                   message="six more checks after the wall clock went back an hour")
    finally:
        agent.shutdown()
        loop.join(timeout=5)
    assert not loop.is_alive()


# --- the agent as a process -------------------------------------------------------------------

class _Arrivals(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.arrivals.append((self.path, time.monotonic()))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def site():
    """A site on 127.0.0.1 that records when each path is requested."""
    server = LoopbackServer(_Arrivals).start()
    server.arrivals = []
    server.url = server.url.rstrip("/")
    yield server
    server.stop()


def test_the_first_checks_of_ten_targets_are_spread_over_the_interval_not_simultaneous(
        site, backend, tmp_path):  # noqa: F811
    n, interval = 10, 2.0
    env = base_env(tmp_path, TARGET_URL=",".join(f"{site.url}/t/{i}" for i in range(n)),
                   BACKEND_URL=backend.url, CHECK_INTERVAL_SECONDS=str(interval))
    proc = start(["agent/agent.py"], env, tmp_path / "agent.out")
    try:
        wait_until(lambda: len({path for path, _ in site.arrivals}) == n, 15,
                   message="a first check of every target")
    finally:
        assert stop(proc) == 0
    first: dict[str, float] = {}
    for path, at in site.arrivals:
        first.setdefault(path, at)
    order = sorted(first, key=first.get)
    assert order == [f"/t/{i}" for i in range(n)]  # in the configured order, one slot each
    times = sorted(first.values())
    gaps = [b - a for a, b in zip(times, times[1:])]
    # Planned 0.2 s apart; a burst would put them all within a few milliseconds.
    assert times[-1] - times[0] >= 0.8 * (n - 1) * interval / n
    assert min(gaps) >= 0.1, gaps
    assert "schedule: 10 targets in 10 slots 200ms apart, every 2s, from " in (tmp_path / "agent.log").read_text()


@pytest.fixture
def four_targets(tmp_path):
    """An agent with targets a..d every 2 s (slots 0.5 s apart), whose slot jobs record instead of checking."""
    settings = load_settings({"API_KEY": API_KEY, "TARGET_URL": ",".join(f"http://127.0.0.1:9/{n}" for n in "abcd"),
                              "CHECK_INTERVAL_SECONDS": "2", "AGENT_SPOOL_FILE": str(tmp_path / "spool.db")})
    agent = Agent(settings, threading.Event(), Spool(settings.spool_file, settings.spool_max_events))
    agent.submitted = []
    agent.submit_all = lambda specs: agent.submitted.extend(spec.url[-1] for spec in specs)
    yield agent
    agent.shutdown()


def due_by_name(scheduler) -> dict[str, float]:
    return {spec.url[-1]: (job.next_run - scheduler.at(0)).total_seconds()
            for job in scheduler.jobs for spec in job.job_func.args[0]}


def test_a_new_list_keeps_unchanged_targets_in_their_slots_and_gives_new_ones_their_own(four_targets):
    from agent.checks.spec import CheckSpec
    clock = FakeClock(1000.0)
    scheduler = four_targets.spread_schedule(clock)
    clock.reading = 1000.7
    scheduler.run_pending()
    before = due_by_name(scheduler)
    assert before == pytest.approx({"a": 1002.0, "b": 1002.5, "c": 1001.0, "d": 1001.5})
    a, b, c, d = four_targets.specs
    slow_b = CheckSpec(b.name, url=b.url, interval_seconds=2.0, timeout_seconds=1.0)
    e = CheckSpec("e", url="http://127.0.0.1:9/e", interval_seconds=2.0)
    four_targets.replace_specs([a, slow_b, d, e])
    assert due_by_name(scheduler) == pytest.approx({"a": 1002.0, "b": 1002.5, "d": 1001.5, "e": 1000.7})
    assert [spec for job in scheduler.jobs for spec in job.job_func.args[0] if spec.name == b.name] == [slow_b]
    assert len(scheduler.jobs) == 4  # c's slot went with it


def test_a_list_refreshed_more_often_than_the_interval_still_checks_every_target(four_targets):
    clock = FakeClock(1000.0)
    scheduler = four_targets.spread_schedule(clock)
    for _ in range(8):  # two intervals, a refresh of the same list every quarter interval
        scheduler.run_pending()
        clock.reading += 0.5
        four_targets.replace_specs(list(four_targets.specs))
    assert Counter(four_targets.submitted) == {"a": 2, "b": 2, "c": 2, "d": 2}


def test_a_new_list_of_specs_replaces_the_slot_jobs_each_interval_spread_on_its_own(tmp_path):
    """How a pulled targets list will take effect live: removed targets stop, new ones start."""
    from agent.checks.spec import CheckSpec
    settings = load_settings({"API_KEY": API_KEY, "TARGET_URL": "http://127.0.0.1:9/a,http://127.0.0.1:9/b",
                              "CHECK_INTERVAL_SECONDS": "2", "AGENT_SPOOL_FILE": str(tmp_path / "spool.db")})
    agent = Agent(settings, threading.Event(), Spool(settings.spool_file, settings.spool_max_events))
    try:
        start = 1000.0
        scheduler = agent.spread_schedule(lambda: start)
        assert len(scheduler.jobs) == 2
        specs = [CheckSpec(f"fast{i}", url=f"http://127.0.0.1:9/f{i}", interval_seconds=1.0) for i in range(4)]
        specs.append(CheckSpec("db", kind="tcp", host="127.0.0.1", port=9, interval_seconds=30.0))
        agent.replace_specs(specs)
        by_interval = Counter(job.interval for job in scheduler.jobs)
        assert by_interval == {1.0: 4, 30.0: 1}
        fast_due = sorted((job.next_run - scheduler.at(start)).total_seconds()
                          for job in scheduler.jobs if job.interval == 1.0)
        assert fast_due == pytest.approx([0.0, 0.25, 0.5, 0.75], abs=1e-3)
        checked = sorted(spec.name for job in scheduler.jobs for spec in job.job_func.args[0])
        assert checked == sorted(spec.name for spec in specs)
    finally:
        agent.shutdown()
