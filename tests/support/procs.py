"""Start the real backend and agent as processes, wait for them with deadlines, stop them by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.databases import database_url, query, require_database

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def no_targets_file(tmp_path: Path) -> Path:
    """tmp_path/targets.yaml, written with no targets unless the test wrote its own first."""
    path = tmp_path / "targets.yaml"
    if not path.exists():
        path.write_text("targets: []\n", encoding="utf-8")
    return path


def _empty_file(path: Path) -> Path:
    """`path`, created empty: an ENV_FILE that exists (a missing one stops every entry point)."""
    path.touch()
    return path


def base_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """An environment that never reads the developer's .env and never reaches the internet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "FLASK_", "SMTP_", "WEBHOOK_", "APPRISE_"))}
    env.update({
        "ENV_FILE": str(_empty_file(tmp_path / "empty.env")),
        "PYTHONUNBUFFERED": "1",
        "API_KEY": "test-key-0123456789",
        "TARGET_URL": "http://127.0.0.1:9/",
        "BACKEND_LOG_FILE": str(tmp_path / "server.log"),
        "AGENT_LOG_FILE": str(tmp_path / "agent.log"),
        "AGENT_SPOOL_FILE": str(tmp_path / "spool.db"),
        "DATABASE_URL": database_url(tmp_path),
        "TARGETS_FILE": str(no_targets_file(tmp_path)),  # never the developer's own file
    })
    env.update(overrides)
    return env


def start(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start `python <args>` from the repository root, output to `log_path`."""
    out = open(log_path, "ab")
    try:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        out.close()


def stop(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """SIGTERM the process by PID, then SIGKILL if it outlives `timeout`; return its exit status."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
    return proc.returncode


def run_to_exit(args: list[str], env: dict[str, str], log_path: Path, timeout: float = 30.0) -> int:
    """Run `python <args>` to its end (at most `timeout` s); return its exit status; never leave it running."""
    proc = start(args, env, log_path)
    try:
        return proc.wait(timeout=timeout)
    finally:
        stop(proc)


def assert_no_secret_in_any_file(tmp_path: Path, *secrets: str) -> None:
    """No file a run wrote under tmp_path (logs, captured output, databases, spool) holds a secret."""
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"a secret leaked into {path.name}"


def wait_until(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    """Poll `predicate` until it returns a truthy value or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def wait_healthy(base_url: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Wait until GET /health answers 200, failing early if the process died."""
    def healthy():
        if proc.poll() is not None:
            raise AssertionError(f"backend exited with status {proc.returncode} before it was healthy")
        try:
            return requests.get(f"{base_url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False
    wait_until(healthy, timeout, interval=0.1, message=f"{base_url}/health")


class Backend:
    """The real backend (`python backend/app.py`) on a free port with its own database and log."""

    def __init__(self, tmp_path: Path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = tmp_path / "notifications.db"
        self.log_path = tmp_path / "server.log"
        self.stdout_path = tmp_path / "backend.out"
        self.env = base_env(tmp_path, FLASK_PORT=str(self.port), **env)
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> "Backend":
        require_database("Backend.start()")
        self.proc = start(["backend/app.py"], self.env, self.stdout_path)
        if wait:
            wait_healthy(self.url, self.proc)
        return self

    def stop(self) -> int | None:
        return stop(self.proc) if self.proc else None

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """Call the API with the test key and a bounded timeout."""
        headers = {"X-API-Key": self.env["API_KEY"], **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)

    def rows(self, sql: str, *params) -> list[tuple]:
        """Read the real database the way a user would with the sqlite3 CLI or psql."""
        return query(self.env["DATABASE_URL"], sql, params)

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8") if self.log_path.exists() else ""


class Gunicorn:
    """`gunicorn -c backend/gunicorn_conf.py backend.wsgi:app` on a free port, stopped by PID."""

    def __init__(self, tmp_path, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = tmp_path / "notifications.db"
        self.log_path = tmp_path / "server.log"
        self.env = base_env(tmp_path, FLASK_PORT=str(self.port), **env)
        self.proc = start(["-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.wsgi:app"], self.env,
                          tmp_path / "gunicorn.out")

    def stop(self) -> int | None:
        """SIGTERM the master (it stops its workers); SIGKILL the whole group if that takes too long."""
        try:
            return stop(self.proc, timeout=30)
        finally:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # only leftovers of this gunicorn's own group
            except ProcessLookupError:
                pass

    def post(self, body: dict) -> requests.Response:
        return requests.post(f"{self.url}/events", json=body, headers={"X-API-Key": self.env["API_KEY"]},
                             timeout=60)

    def rows(self, sql: str, *params) -> list[tuple]:
        return query(self.env["DATABASE_URL"], sql, params)
