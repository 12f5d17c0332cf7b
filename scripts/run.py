"""Start the backend and the agent together (`make run`), or with a local demo site (`make demo`).

Output of every process goes straight to this terminal. Each child runs in a process group of its
own, so Ctrl-C reaches only this script, which then stops each child once, by PID: the agent first
(so it does not log a vanished backend), then the backend, then the demo site.
"""

import signal
import sys

_stop_requested: list[int] = []


def _request_stop(signum, frame):
    _stop_requested.append(signum)  # no exception: it could land anywhere, even in the clean-up


# First thing, so that a Ctrl-C during the imports below stops us quietly too.
for _signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(_signal, _request_stop)

import argparse  # noqa: E402
import ctypes  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.error import URLError  # noqa: E402
from urllib.request import urlopen  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.config import ConfigError, Settings, load_settings, read_environment  # noqa: E402
from backend.startup import check_port_free, open_database  # noqa: E402
from common.logs import plural  # noqa: E402
from backend.targets_file import TargetsFileError, read_file, shown_path  # noqa: E402

DEMO_SITE_PORT = 8099
DEMO_BACKEND_PORT = 5050
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
STOP_TIMEOUT_SECONDS = 30.0  # the backend may be finishing a notification attempt (NOTIFY_TIMEOUT_SECONDS)


def demo_environment() -> dict[str, str]:
    """Settings for the demo: a local flapping site, a 2 s interval, its own database and port."""
    return {
        "TARGET_URL": f"http://127.0.0.1:{DEMO_SITE_PORT}/",
        "CHECK_INTERVAL_SECONDS": "2",
        "REQUEST_TIMEOUT_SECONDS": "2",
        "FAILURE_THRESHOLD": "3",
        "FLASK_HOST": "127.0.0.1",
        "FLASK_PORT": str(DEMO_BACKEND_PORT),
        "BACKEND_URL": f"http://127.0.0.1:{DEMO_BACKEND_PORT}",
        "DATABASE_URL": f"sqlite:///{ROOT / 'demo.db'}",
        "AGENT_SPOOL_FILE": str(ROOT / "agent" / "demo-spool.db"),  # make run's agent locks agent/spool.db
        "TARGETS_FILE": str(ROOT / "scripts" / "demo_targets.yaml"),  # not your targets.yaml: nothing checks it here
    }


STARTER_TARGETS = """\
# Created by `make run`: the backend's own health endpoint, so nothing leaves this machine.
# Replace it with your own sites; targets.example.yaml documents every key.
targets:
  - name: this-backend
    url: {url}
"""


def ensure_targets_file(settings: Settings, environ: dict[str, str]) -> None:
    """Without TARGET_URL and a targets file, write one watching this backend's own /health, and say so (SPEC §8)."""
    if environ.get("TARGET_URL", "").strip() or settings.targets_file.exists():
        return  # a TARGET_URL agent checks its URLs: a file target nobody checks would only confuse
    url = f"{local_url(settings)}/health"
    try:
        settings.targets_file.write_text(STARTER_TARGETS.format(url=url), encoding="utf-8")
    except OSError as exc:
        raise ConfigError("TARGETS_FILE", f"cannot create {shown_path(settings)}: {exc.strerror or exc}") from None
    print(f"created {shown_path(settings)} with one target, this backend's own {url} (nothing leaves this "
          "machine): add your sites there, see targets.example.yaml", flush=True)


def local_url(settings: Settings) -> str:
    """The backend's address as a client on this machine reaches it."""
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def backend_command(debug: bool) -> list[str]:
    """gunicorn with several workers; Flask's development server only when FLASK_DEBUG=true."""
    if debug:
        return [sys.executable, "backend/app.py"]
    return [sys.executable, "-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.wsgi:app"]


def check_before_start(settings: Settings) -> None:
    """What the backend would refuse, said here before anything starts: a taken port, a database that fails."""
    check_port_free(settings.host, settings.port)
    open_database(settings.database_url).dispose()


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start `args` from the repository root in a process group of its own (out of reach of Ctrl-C).

    Out of the terminal's reach, a child must still end with us if we are killed outright: Linux
    sends it SIGTERM when this process dies (PR_SET_PDEATHSIG), as Ctrl-C on the group once did.
    """
    parent = os.getpid()

    def die_with_parent() -> None:  # runs in the child between fork and exec
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # we died before prctl took effect
            os._exit(1)

    return subprocess.Popen(args, cwd=ROOT, env=env, process_group=0, preexec_fn=die_with_parent)


def wait_for_health(url: str, backend: subprocess.Popen, timeout: float = 30.0) -> bool:
    """Poll GET /health until it answers 200, the backend dies, we are told to stop, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and backend.poll() is None and not _stop_requested:
        try:
            with urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return True
        except (URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def stop_all(procs: list[subprocess.Popen], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """Stop each child, last started first: SIGTERM by PID, a bounded wait, then SIGKILL to its group."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"pid {proc.pid} did not stop within {timeout:g}s: killing it", file=sys.stderr, flush=True)
            os.killpg(proc.pid, signal.SIGKILL)  # its group: gunicorn's workers go with their master
            proc.wait(timeout=5)


def running_line(settings: Settings, backend: subprocess.Popen, agent: subprocess.Popen) -> str:
    """Which PID is which: the PIDs in the backend's own start-up lines are gunicorn's workers."""
    if settings.debug:
        server = f"backend pid {backend.pid} (Flask development server)"
    else:
        server = f"backend: gunicorn master pid {backend.pid} with {plural(settings.workers, 'worker')} " \
                 "(each logs its own pid)"
    return f"running: {server}, agent pid {agent.pid}. Ctrl-C stops both."


def dashboard_line(settings: Settings) -> str:
    """Where the dashboard is, or how to turn it on (SPEC §12); never the password."""
    if settings.dashboard is None:
        return "dashboard: off; set DASHBOARD_PASSWORD in .env to turn it on (README, Dashboard)"
    return f"dashboard: {local_url(settings)}/ui/ (log in with DASHBOARD_PASSWORD from .env)"


def main() -> int:
    """Start everything, wait until one child exits or we are told to stop, then stop the rest."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", action="store_true", help="watch a bundled local site that goes down and up")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(demo_environment() if args.demo else {})}
    try:
        environ = read_environment() | env
        settings = load_settings(environ)
        if not args.demo:
            ensure_targets_file(settings, environ)
        read_file(settings)  # the backend would refuse a bad targets file too, less plainly
        check_before_start(settings)
    except (ConfigError, TargetsFileError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    procs: list[subprocess.Popen] = []
    try:
        if args.demo:
            procs.append(start([sys.executable, "scripts/demo_site.py", "--port", str(DEMO_SITE_PORT)], env))
        backend = start(backend_command(settings.debug), env)
        procs.append(backend)
        if not wait_for_health(local_url(settings), backend):
            if _stop_requested:
                return 0
            if backend.poll() is not None:
                print(f"the backend exited with status {backend.returncode} before it answered /health "
                      "(its output is above)", file=sys.stderr)
            else:
                print("the backend did not answer /health within 30s; see backend/server.log", file=sys.stderr)
            return 1
        agent = start([sys.executable, "agent/agent.py"], env)
        procs.append(agent)
        print(running_line(settings, backend, agent), flush=True)
        print(dashboard_line(settings), flush=True)
        if args.demo:
            print(f"demo: the site at http://127.0.0.1:{DEMO_SITE_PORT}/ is up 15s, down 25s, and so on. "
                  "Watch an ERROR alert open after 3 failed checks, later failures deduplicated, then the "
                  "RECOVERY. Inspect with: sqlite3 demo.db 'SELECT * FROM alerts'", flush=True)
        while not _stop_requested and all(proc.poll() is None for proc in procs):
            time.sleep(0.1)
        return 0 if _stop_requested else 1  # a child exited on its own: say so through our status
    finally:
        stop_all(procs)


if __name__ == "__main__":
    sys.exit(main())
