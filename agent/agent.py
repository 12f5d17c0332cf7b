"""Entry script: check every target on a schedule and send each result to the backend (SPEC §7).

Run `python agent/agent.py` (a loop until SIGINT/SIGTERM) or `python agent/agent.py --once`.
"""

import sys
from pathlib import Path

# The script's own folder must not be on sys.path: this file would shadow the `agent` package
# (and any top-level module here, a library). The repository root goes first instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from concurrent.futures import Future, ThreadPoolExecutor  # noqa: E402

import requests  # noqa: E402
import schedule  # noqa: E402

from agent.checker import check  # noqa: E402
from agent.config import AgentSettings, ConfigError, load_settings, read_environment  # noqa: E402
from agent.sender import send_event  # noqa: E402

log = logging.getLogger(__name__)

LOG_FORMAT = "[%(asctime)s] [%(levelname)s] %(message)s"
LOG_DATEFMT = "%Y-%m-%d %H:%M:%S"
MAX_IDLE_SECONDS = 0.5  # how long the loop may sleep before it looks at the stop flag again


class Agent:
    """Checks targets and sends their results; one job per target runs at a time."""

    def __init__(self, settings: AgentSettings, stop: threading.Event):
        self.settings = settings
        self.stop = stop
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=settings.max_workers,
                                            thread_name_prefix="check")
        self._running: dict[str, Future] = {}

    def _session(self) -> requests.Session:
        # requests.Session is not documented as thread-safe, so each worker thread keeps its own.
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def check_and_send(self, url: str) -> bool:
        """Check one target and send the result; True when the backend has the event."""
        try:
            session = self._session()
            result = check(session, url, self.settings.request_timeout_seconds)
            return send_event(session, self.settings, result.to_event(), stop_event=self.stop)
        except Exception:  # a job boundary: one broken check must not end the agent
            log.exception("job for %s failed unexpectedly", url)
            return False

    def submit(self, url: str) -> None:
        """Start a job for `url` unless its previous one is still running (no pile-up)."""
        previous = self._running.get(url)
        if previous is not None and not previous.done():
            log.warning("check %s skipped: its previous check is still in progress", url)
            return
        self._running[url] = self._executor.submit(self.check_and_send, url)

    def run_once(self) -> int:
        """Check every target concurrently and send each result; 0 when all were delivered."""
        futures = [self._executor.submit(self.check_and_send, url) for url in self.settings.target_urls]
        delivered = sum(1 for future in futures if future.result())
        log.info("round done: %d/%d events delivered", delivered, len(futures))
        return 0 if delivered == len(futures) else 1

    def run_forever(self) -> int:
        """Run one job per target every interval until the stop flag is set."""
        scheduler = schedule.Scheduler()
        for url in self.settings.target_urls:
            scheduler.every(self.settings.check_interval_seconds).seconds.do(self.submit, url)
        scheduler.run_all()  # the first round starts now, not one interval from now
        while not self.stop.is_set():
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            self.stop.wait(MAX_IDLE_SECONDS if idle is None else min(max(idle, 0.01), MAX_IDLE_SECONDS))
        return 0

    def shutdown(self) -> None:
        """Drop queued jobs and wait for running ones; their backoffs end at once on the stop flag."""
        self._executor.shutdown(wait=True, cancel_futures=True)


def configure_logging(log_file: Path) -> None:
    """Log to stdout and `log_file`, one UTC line per fact (SPEC §7)."""
    formatter = logging.Formatter(LOG_FORMAT, datefmt=LOG_DATEFMT)
    formatter.converter = time.gmtime
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handlers = [logging.StreamHandler(sys.stdout), logging.FileHandler(log_file, encoding="utf-8")]
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("urllib3").setLevel(logging.WARNING)


def install_signal_handlers(stop: threading.Event) -> None:
    """Make SIGINT and SIGTERM set `stop`; the loops notice it and wind down."""
    def handle(signum, frame):
        stop.set()  # no logging here: a handler may interrupt the main thread mid-log
    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Check target URLs and report to the backend.")
    parser.add_argument("--once", action="store_true",
                        help="run one round, exit 0 when every event was delivered, else 1")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the agent; the exit status is 0 (ok), 1 (--once: not all delivered) or 2 (bad config)."""
    args = parse_args(argv)
    try:
        settings = load_settings(read_environment())
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        configure_logging(settings.log_file)
    except OSError as exc:
        print(f"configuration error: AGENT_LOG_FILE: cannot open {str(settings.log_file)!r}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2

    stop = threading.Event()
    install_signal_handlers(stop)
    interval = "once" if args.once else f"every {settings.check_interval_seconds:g}s"
    log.info("agent started: %d targets %s, sending to %s", len(settings.target_urls), interval,
             settings.backend_url)
    agent = Agent(settings, stop)
    try:
        status = agent.run_once() if args.once else agent.run_forever()
    finally:
        stop.set()
        agent.shutdown()
    log.info("agent stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
