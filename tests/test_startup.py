"""Every entry point, run as a process, refuses a bad start with one line naming the key and exit 2 (SPEC §2)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from backend.startup import port_holder, program
from tests.support.procs import ROOT, Backend, base_env, free_port, stop, wait_until
from tests.support.servers import TargetServer

PASSWORD = "pw-SECRET-4242"
ENTRY_POINTS = {
    "app": ["backend/app.py"],
    "init_db": ["backend/init_db.py"],
    "run": ["scripts/run.py"],
    "gunicorn": ["-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.wsgi:app"],
}


def run_entry(args: list[str], env: dict[str, str], timeout: float = 60, cwd=ROOT) -> subprocess.CompletedProcess:
    """Run `python <args>` (from the repository root) to its end; a hung one is killed by PID."""
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        stop(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_refused(done: subprocess.CompletedProcess, key: str, *words: str) -> str:
    """Exit 2, and one line on stderr naming `key`, with no traceback; return that line."""
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith(f"configuration error: {key}: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("entry", ["app", "init_db", "run", "gunicorn"])
@pytest.mark.parametrize("url, words", [
    ("foo://somewhere/x", ["unknown scheme 'foo://'"]),
    ("not a url", ["is not a database URL"]),
    ("sqlite:///{tmp}/missing/folder/x.db", ["folder", "missing/folder", "does not exist"]),
    (f"postgresql+psycopg://outage:{PASSWORD}@127.0.0.1:{{port}}/outage", ["cannot open", "127.0.0.1"]),
], ids=["unknown-scheme", "not-a-url", "missing-folder", "unreachable-postgresql"])
def test_a_bad_database_url_is_one_line_and_exit_2(tmp_path, entry, url, words):
    env = base_env(tmp_path, FLASK_PORT=str(free_port()),
                   DATABASE_URL=url.format(tmp=tmp_path, port=free_port()))
    line = assert_refused(run_entry(ENTRY_POINTS[entry], env), "DATABASE_URL", *words)
    assert PASSWORD not in line


@pytest.mark.parametrize("entry", ["app", "run"])
def test_a_missing_env_file_is_named_not_reported_as_a_missing_api_key(tmp_path, entry):
    env = base_env(tmp_path, ENV_FILE=str(tmp_path / "typo.env"))
    del env["API_KEY"]
    assert_refused(run_entry(ENTRY_POINTS[entry], env), "ENV_FILE", f"no such file {tmp_path / 'typo.env'}")


def test_a_missing_env_file_stops_the_agent_too(tmp_path):
    env = base_env(tmp_path, ENV_FILE=str(tmp_path / "typo.env"))
    assert_refused(run_entry(["agent/agent.py", "--once"], env), "ENV_FILE", "no such file")


def test_a_relative_env_file_is_read_from_the_repository_by_backend_and_agent(tmp_path):
    """Both resolve ENV_FILE against the repository (SPEC §1), not the current directory."""
    name = f"tests/.env-startup-{os.getpid()}"
    path = ROOT / name
    path.write_text("CHECK_INTERVAL_SECONDS=abc\nFAILURE_THRESHOLD=zero\n", encoding="utf-8")
    try:
        env = base_env(tmp_path, ENV_FILE=name)
        for key in ("CHECK_INTERVAL_SECONDS", "FAILURE_THRESHOLD"):
            env.pop(key, None)
        assert_refused(run_entry([str(ROOT / "backend/app.py")], env, cwd=tmp_path), "FAILURE_THRESHOLD")
        assert_refused(run_entry([str(ROOT / "agent/agent.py"), "--once"], env, cwd=tmp_path),
                       "CHECK_INTERVAL_SECONDS")
    finally:
        path.unlink()


@pytest.mark.parametrize("entry", ["app", "run"])
def test_half_set_telegram_is_an_error_naming_the_missing_key(tmp_path, entry):
    env = base_env(tmp_path, TELEGRAM_BOT_TOKEN="123:token-SECRET")
    line = assert_refused(run_entry(ENTRY_POINTS[entry], env), "TELEGRAM_CHAT_ID",
                          "is required when TELEGRAM_BOT_TOKEN is set")
    assert "token-SECRET" not in line


@pytest.mark.parametrize("entry", ["app", "run", "gunicorn"])
def test_a_port_held_by_another_program_is_named_with_its_pid(tmp_path, entry):
    server = TargetServer().start()  # a plain HTTP server in this test process
    try:
        env = base_env(tmp_path, FLASK_PORT=str(server.server_port))
        line = assert_refused(run_entry(ENTRY_POINTS[entry], env), "FLASK_PORT",
                              f"127.0.0.1:{server.server_port} is already in use by pid {os.getpid()} (")
        assert "pytest" in line or sys.executable in line  # this process's command line
    finally:
        server.stop()


HOLD_PORT = """
import socket, sys, time
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
time.sleep(60)
"""


def test_a_port_holder_is_named_by_its_program_never_its_other_arguments(tmp_path):
    """A command line may carry a secret: the message shows the executable and its script only."""
    script = tmp_path / "holder.py"
    script.write_text(HOLD_PORT)
    port = free_port()
    holder = subprocess.Popen([sys.executable, "-u", str(script), str(port), "--token", "tok-SECRET-77"])
    try:
        wait_until(lambda: _listening(port), timeout=20, message=f"the holder listening on {port}")
        assert port_holder(port) == f"pid {holder.pid} ({os.path.basename(sys.executable)} {script})"
    finally:
        stop(holder)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("argv, shown", [
    (["/usr/bin/python3", "backend/app.py", "--password", "x"], "python3 backend/app.py"),
    (["/v/bin/python", "-u", "-W", "ignore", "-m", "pytest", "-k", "secret"], "python -m pytest"),
    (["python3.12", "-c", "print('secret')"], "python3.12 -c"),
    (["/usr/sbin/nginx", "-g", "daemon off; secret"], "nginx"),
    (["/opt/server", "--api-key=secret"], "server"),
    (["gunicorn: master [backend.wsgi:app]"], "gunicorn: master [backend.wsgi:app]"),
    (["node"], "node"),
    ([], ""),
], ids=repr)
def test_the_program_is_the_executable_and_its_script(argv, shown):
    assert program(argv) == shown


def test_run_refuses_a_port_where_another_backend_answers_health(tmp_path):
    """The newcomer's trap: a backend left running answered /health, and run.py said "running"."""
    (tmp_path / "other").mkdir()
    other = Backend(tmp_path / "other").start()
    try:
        env = base_env(tmp_path, FLASK_PORT=str(other.port), BACKEND_URL=other.url)
        line = assert_refused(run_entry(ENTRY_POINTS["run"], env), "FLASK_PORT",
                              f"is already in use by pid {other.proc.pid} (", "backend/app.py")
        assert "running" not in line
    finally:
        other.stop()


def test_a_short_api_key_is_a_warning_at_start_of_backend_and_agent_never_showing_it(tmp_path):
    key = "short-KEY"
    backend = Backend(tmp_path, API_KEY=key).start()
    try:
        env = base_env(tmp_path, API_KEY=key, BACKEND_URL=backend.url, TARGET_URL=f"{backend.url}/health")
        agent = run_entry(["agent/agent.py", "--once"], env)
    finally:
        backend.stop()
    warning = re.compile(r"^\[[\d\- :]+\] \[WARNING\] API_KEY is shorter than 16 characters", re.M)
    backend_output = (tmp_path / "backend.out").read_text()
    assert warning.search(backend_output), backend_output
    assert warning.search(agent.stdout), agent.stdout + agent.stderr
    assert key not in backend_output + agent.stdout + agent.stderr
    assert key not in (tmp_path / "server.log").read_text() + (tmp_path / "agent.log").read_text()


def test_a_long_api_key_gives_no_warning(tmp_path):
    backend = Backend(tmp_path).start()
    backend.stop()
    assert "API_KEY" not in (tmp_path / "backend.out").read_text()


def test_the_backend_start_line_says_which_process_it_is(tmp_path):
    backend = Backend(tmp_path).start()
    backend.stop()
    assert f"backend (pid {backend.proc.pid}) serving {backend.url}" in (tmp_path / "backend.out").read_text()


def test_gunicorn_workers_name_their_master(tmp_path):
    port = free_port()
    env = base_env(tmp_path, FLASK_PORT=str(port), BACKEND_WORKERS="2")
    out = tmp_path / "gunicorn.out"
    with open(out, "wb") as sink:
        proc = subprocess.Popen([sys.executable, *ENTRY_POINTS["gunicorn"]], cwd=ROOT, env=env, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        pattern = re.compile(rf"backend \(gunicorn worker pid (\d+), master pid {proc.pid}\) serving")
        wait_until(lambda: len(pattern.findall(out.read_text())) == 2, 30, message="two worker start lines")
        workers = {int(pid) for pid in pattern.findall(out.read_text())}
        assert proc.pid not in workers
    finally:
        stop(proc)


SERVED_APP_FREEZES = """
import gc
from backend.config import load_settings, read_environment
from backend.factory import create_served_app
before = gc.get_freeze_count()
app = create_served_app(load_settings(read_environment()))
try:
    print("frozen", before, gc.get_freeze_count(), flush=True)
finally:
    app.extensions["outage"].close()
"""


def test_a_served_process_leaves_what_it_built_at_start_out_of_later_collections(tmp_path):
    # gc.freeze(): a full collection no longer walks the modules and the app (some 100 ms, often
    # while the write lock was held). Only served processes: tests build many apps in one process.
    done = run_entry(["-c", SERVED_APP_FREEZES], base_env(tmp_path))
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if line.startswith("frozen ")]
    before, after = map(int, line.split()[1:])
    assert before == 0 and after > 100_000
