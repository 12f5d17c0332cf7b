"""`make run` (scripts/run.py) as a terminal runs it: start-up lines, a taken port, and Ctrl-C, every time."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.proc_stat import PARENT, STATE, stat_fields
from tests.support.databases import query
from tests.support.procs import ROOT, base_env, free_port, wait_until

RUNNING = re.compile(r"^running: .*Ctrl-C stops both", re.M)


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, found through each process's parent in /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(stat_fields(entry.name)[PARENT])
            except OSError:
                continue
    found, frontier = set(), {pid}
    while frontier:
        children = {child for child, parent in parents.items() if parent in frontier}
        frontier = children - found
        found |= children
    return found


def is_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie waiting to be reaped."""
    try:
        return stat_fields(pid)[STATE] != "Z"
    except OSError:
        return False


class RunScript:
    """scripts/run.py in its own process group (a terminal's foreground job), output to a file."""

    def __init__(self, tmp_path: Path, **env: str):
        port = free_port()
        self.port = port
        self.out_path = tmp_path / "run.out"
        self.env = base_env(tmp_path, **{"FLASK_PORT": str(port), "BACKEND_URL": f"http://127.0.0.1:{port}",
                                         "TARGET_URL": f"http://127.0.0.1:{port}/health",
                                         "CHECK_INTERVAL_SECONDS": "0.2", "REQUEST_TIMEOUT_SECONDS": "1",
                                         "BACKEND_WORKERS": "2", **env})
        self.proc: subprocess.Popen | None = None
        self.pids: set[int] = set()

    def start(self) -> "RunScript":
        with open(self.out_path, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "scripts/run.py"], cwd=ROOT, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def output(self) -> str:
        return self.out_path.read_text(encoding="utf-8", errors="replace") if self.out_path.exists() else ""

    def wait_running(self, timeout: float = 60.0) -> None:
        def running():
            if self.proc.poll() is not None:
                raise AssertionError(f"run.py exited with {self.proc.returncode}:\n{self.output()}")
            return RUNNING.search(self.output())
        wait_until(running, timeout, interval=0.1, message="'running' from run.py")

    def kill_leftovers(self) -> None:
        """SIGKILL, by PID, whatever this run started and left behind."""
        if is_alive(self.proc.pid):
            self.pids |= descendants(self.proc.pid)
        for pid in [*self.pids, self.proc.pid]:
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)


@pytest.fixture
def run_script(tmp_path):
    """Start scripts/run.py with `run_script(**env)`; whatever it started is killed by PID afterwards."""
    started: list[RunScript] = []

    def make(**env: str) -> RunScript:
        started.append(RunScript(tmp_path, **env).start())
        return started[-1]

    yield make
    for run in started:
        run.kill_leftovers()


def ctrl_c(run: RunScript, processes: int) -> None:
    """Press Ctrl-C: SIGINT to the whole group; assert every process is gone within a bound, quietly."""
    run.wait_running()
    run.pids = descendants(run.proc.pid)
    assert len(run.pids) == processes, run.pids
    os.killpg(run.proc.pid, signal.SIGINT)
    status = run.proc.wait(timeout=20)
    wait_until(lambda: not any(is_alive(pid) for pid in run.pids), 10, message=f"every child of run.py gone")
    output = run.output()
    assert status == 0, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output


@pytest.mark.parametrize("round_", range(20))
def test_ctrl_c_stops_every_process_quietly(run_script, round_):
    ctrl_c(run_script(), processes=4)  # gunicorn's master and 2 workers, the agent


def test_killing_run_py_outright_still_stops_every_child(run_script):
    """The children sit in groups of their own, out of Ctrl-C's reach: they must not outlive a kill -9."""
    run = run_script()
    run.wait_running()
    run.pids = descendants(run.proc.pid)
    assert len(run.pids) == 4, run.pids
    os.kill(run.proc.pid, signal.SIGKILL)
    run.proc.wait(timeout=10)
    wait_until(lambda: not any(is_alive(pid) for pid in run.pids), 30, message="every child of run.py gone")


@pytest.mark.parametrize("round_", range(5))
def test_ctrl_c_on_gunicorn_alone_stops_it_quietly(tmp_path, round_):
    """The README's `gunicorn -c backend/gunicorn_conf.py backend.wsgi:app` in a terminal: Ctrl-C to its group."""
    port = free_port()
    env = base_env(tmp_path, FLASK_PORT=str(port), BACKEND_WORKERS="2")
    out_path = tmp_path / "gunicorn.out"
    with open(out_path, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.wsgi:app"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    pids: set[int] = set()
    try:
        wait_until(lambda: out_path.read_text().count(") serving") == 2, 30, message="both workers serving")
        pids = descendants(proc.pid)
        assert len(pids) == 2, pids
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        wait_until(lambda: not any(is_alive(pid) for pid in pids), 10, message="both workers gone")
        output = out_path.read_text()
        assert output.count("stopped") == 2 and "Traceback" not in output, output
    finally:
        for pid in [*pids, proc.pid]:
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.mark.parametrize("round_", range(3))
def test_ctrl_c_stops_the_debug_server_quietly(run_script, round_):
    ctrl_c(run_script(FLASK_DEBUG="true"), processes=2)  # backend/app.py, the agent


def test_the_running_line_names_the_gunicorn_master_and_each_worker_names_it_too(run_script):
    run = run_script(BACKEND_WORKERS="1")
    run.wait_running()
    master = int(re.search(r"gunicorn master pid (\d+) with 1 worker \(", run.output()).group(1))
    wait_until(lambda: f"master pid {master}) serving" in run.output(), 10, message="the worker's start line")
    [worker] = re.findall(rf"backend \(gunicorn worker pid (\d+), master pid {master}\) serving", run.output())
    assert int(worker) != master
    ctrl_c(run, processes=3)  # the master, its one worker, the agent


def test_without_target_url_make_run_creates_a_targets_file_watching_its_own_health(run_script, tmp_path):
    """A fresh install: no TARGET_URL, no targets.yaml. run.py writes one (the backend's own /health) and says so."""
    targets = tmp_path / "fresh" / "targets.yaml"
    targets.parent.mkdir()
    run = run_script(TARGET_URL="", TARGETS_FILE=str(targets), AGENT_NAME="box-1",
                     AGENT_TARGETS_CACHE=str(tmp_path / "targets-cache.json"))
    run.wait_running()
    url = f"http://127.0.0.1:{run.port}/health"
    assert f"created {targets} with one target, this backend's own {url} (nothing leaves this machine)" \
        in run.output()
    assert f"url: {url}" in targets.read_text()
    wait_until(lambda: query(run.env["DATABASE_URL"], "SELECT target_url, target, agent, is_success FROM events"),
               30, 0.1, "a check of the backend's own /health")
    rows = query(run.env["DATABASE_URL"], "SELECT target_url, target, agent, is_success FROM events")
    assert tuple(rows[0]) == (url, "this-backend", "box-1", 1)
    ctrl_c(run, processes=4)
    before = targets.read_text()
    run.out_path.rename(tmp_path / "first.out")  # the second run's lines alone in run.out
    again = run_script(TARGET_URL="", TARGETS_FILE=str(targets))
    again.wait_running()
    assert "created" not in again.output() and targets.read_text() == before  # never overwritten
    ctrl_c(again, processes=4)
