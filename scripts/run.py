"""Start the backend and the agent together (`make run`), or with a local demo site (`make demo`).

Output of both processes goes straight to this terminal; Ctrl-C (or SIGTERM) stops them all, by PID.
"""

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.config import ConfigError, load_settings, read_environment  # noqa: E402
from backend.target_list import read_file  # noqa: E402
from backend.targets_file import TargetsFileError  # noqa: E402

DEMO_SITE_PORT = 8099
DEMO_BACKEND_PORT = 5050


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
    }


def backend_command(debug: bool) -> list[str]:
    """gunicorn with several workers; Flask's development server only when FLASK_DEBUG=true."""
    if debug:
        return [sys.executable, "backend/app.py"]
    return [sys.executable, "-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.wsgi:app"]


def wait_for_health(url: str, backend: subprocess.Popen, timeout: float = 30.0) -> bool:
    """Poll GET /health until it answers 200, the backend dies, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and backend.poll() is None:
        try:
            with urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    return True
        except (URLError, OSError):
            pass
        time.sleep(0.2)
    return False


def stop_all(procs: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGTERM every child by PID, wait a bounded time, SIGKILL what is left."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops us the way Ctrl-C does


def main() -> int:
    """Start everything, wait until one child exits or we are told to stop, then stop the rest."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", action="store_true", help="watch a bundled local site that goes down and up")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(demo_environment() if args.demo else {})}
    try:
        settings = load_settings(read_environment() | env)
        read_file(settings)  # the backend would refuse a bad targets file too, less plainly
    except (ConfigError, TargetsFileError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    procs: list[subprocess.Popen] = []
    try:
        if args.demo:
            procs.append(subprocess.Popen([sys.executable, "scripts/demo_site.py", "--port", str(DEMO_SITE_PORT)],
                                          cwd=ROOT, env=env))
        backend = subprocess.Popen(backend_command(settings.debug), cwd=ROOT, env=env)
        procs.append(backend)
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        if not wait_for_health(f"http://{host}:{settings.port}", backend):
            print("the backend did not become healthy; see backend/server.log", file=sys.stderr)
            return 1
        procs.append(subprocess.Popen([sys.executable, "agent/agent.py"], cwd=ROOT, env=env))
        print(f"running: backend pid {backend.pid}, agent pid {procs[-1].pid}. Ctrl-C stops both.", flush=True)
        if args.demo:
            print(f"demo: the site at http://127.0.0.1:{DEMO_SITE_PORT}/ is up 15s, down 25s, and so on. "
                  "Watch an ERROR alert open after 3 failed checks, later failures deduplicated, then the "
                  "RECOVERY. Inspect with: sqlite3 demo.db 'SELECT * FROM alerts'", flush=True)
        while all(proc.poll() is None for proc in procs):
            time.sleep(0.5)
        return 1  # a child exited on its own: say so through our status
    except KeyboardInterrupt:
        return 0
    finally:
        stop_all(procs)


if __name__ == "__main__":
    sys.exit(main())
