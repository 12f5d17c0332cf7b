"""Entry script: check every target on a schedule, spool each result, send the spool (SPEC §7).

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
import datetime as dt  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sqlite3  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Callable, Mapping, Sequence  # noqa: E402

from agent import metrics as agent_metrics  # noqa: E402
from agent.checks.result import CheckResult, log_result  # noqa: E402
from agent.checks.spec import CheckSpec, spec_for_url  # noqa: E402
from agent.engine import CheckEngine, curl_context  # noqa: E402
from agent.http_session import EnvOnceSession  # noqa: E402
from agent.config import AgentSettings, ConfigError, load_settings, read_environment  # noqa: E402
from agent.log_setup import configure_logging  # noqa: E402
from agent.monotonic_schedule import MonotonicScheduler  # noqa: E402
from agent.sender import SpoolSender  # noqa: E402
from agent.spool import Spool, SpoolInUse, SpoolWriter, lock_spool  # noqa: E402
from agent.target_source import TargetSource  # noqa: E402
from common.logs import plural  # noqa: E402

log = logging.getLogger(__name__)

MAX_IDLE_SECONDS = 0.5  # how long the loop may sleep before it looks at the stop flag again
SENDER_GRACE_SECONDS = 2.0  # on SIGTERM, how long an in-flight POST may take to finish
MIN_SLOT_SECONDS = 0.05  # the spread schedule's finest step: at most interval / this many slots
# --once's bounds: how long it waits for its results to be committed to the spool, and after how
# long it starts no new send (a send under way ends by its own retries). What is left stays
# spooled for the next run, and the exit status is 1.
ONCE_COMMIT_LIMIT_SECONDS = 30.0
ONCE_SEND_LIMIT_SECONDS = 60.0
FIRST_FEW_TARGETS = 3  # how many target URLs the start line names


def spread_slots(n_targets: int, interval: float, min_slot: float = MIN_SLOT_SECONDS) -> list[int]:
    """The slot of each target: `min(n_targets, interval // min_slot)` slots, targets in order, evenly.

    Slot s is first due at start + s x interval / slots. Target i goes to slot i x slots // n, so
    each slot holds the same number of targets (give or take one), and with no more targets than
    slots, target i is first due at start + i x interval / n.
    """
    if n_targets <= 0:
        return []
    slots = max(1, min(n_targets, int(interval / min_slot + 1e-9)))
    return [i * slots // n_targets for i in range(n_targets)]


def spread_offsets(n_targets: int, interval: float, min_slot: float = MIN_SLOT_SECONDS) -> list[float]:
    """When each target is first due, in seconds after the loop starts: spread over one interval.

    Every target keeps its offset round after round (each round is one interval), so checks arrive
    at an even rate instead of as one burst of every target per interval.
    """
    slots = spread_slots(n_targets, interval, min_slot)
    count = max(slots, default=0) + 1
    return [slot * interval / count for slot in slots]


def specs_from_settings(settings: AgentSettings) -> list[CheckSpec]:
    """TARGET_URL's URLs as http specs with the defaults, so their events are exactly as before (SPEC §7)."""
    return [spec_for_url(url, settings.check_interval_seconds, settings.request_timeout_seconds)
            for url in settings.target_urls]


class Agent:
    """Checks targets into the spool; one sender thread drains the spool to the backend.

    The schedule's slot jobs hand their specs to the check engine (one libcurl event loop, see
    agent/engine.py), which hands each result to the spool writer; the writer commits within
    milliseconds (group commit, see agent/spool.py). So a check never waits for sending or for the
    disk, a backend that is down delays no check, and a crash of the backend loses no result.
    """

    def __init__(self, settings: AgentSettings, stop: threading.Event, spool: Spool,
                 environ: Mapping[str, str] | None = None):
        self.settings = settings
        self.stop = stop
        self.spool = spool
        self.specs: list[CheckSpec] = specs_from_settings(settings)
        self._wake_sender = threading.Event()
        self._sender_session = EnvOnceSession()
        self.sender = SpoolSender(spool, settings, self._sender_session, stop_event=stop)
        self._sender_thread: threading.Thread | None = None
        self.writer = SpoolWriter(spool, on_commit=self._wake_sender.set)
        context = curl_context(os.environ if environ is None else environ)
        self.engine = CheckEngine(self.spool_result, context, max_in_flight=settings.max_workers).start()
        self._scheduler: MonotonicScheduler | None = None
        self._source_session: EnvOnceSession | None = None
        self.source: TargetSource | None = None
        if settings.pulls_targets:
            self._source_session = EnvOnceSession()
            self.source = TargetSource(self._source_session, settings.backend_url, settings.api_key,
                                       settings.agent_name, settings.targets_cache, stop, settings.allow)

    def spool_result(self, result: CheckResult) -> None:
        """Log one check's line and hand its event to the spool writer (on the engine's thread)."""
        log_result(result)
        agent_metrics.check_done(result.is_success, result.response_time_ms)
        self.writer.put(result.to_event(self.settings.agent_name))

    def submit_all(self, specs: Sequence[CheckSpec]) -> None:
        """One slot of the spread schedule: start a check of each of `specs` (one still running is skipped)."""
        self.engine.submit(specs)

    def run_once(self) -> int:
        """Check every target concurrently, then drain the whole spool; 0 when it ends empty (SPEC §7)."""
        if self.source is not None and not self._pull_first_list():
            return 1
        self.engine.submit(self.specs)
        if not self.engine.wait_idle(self._longest_timeout() + ONCE_COMMIT_LIMIT_SECONDS):
            log.error("round done: checks still running past their timeout")
        if not self.writer.flush(timeout=ONCE_COMMIT_LIMIT_SECONDS):
            log.error("round done: %s not written to the spool %s within %gs (a full disk?)",
                      plural(len(self.writer), "result"), self.spool.path, ONCE_COMMIT_LIMIT_SECONDS)
        if len(self.spool):
            log.info("round done: %s, sending %s", plural(len(self.specs), "check"),
                     plural(len(self.spool), "spooled result"))
        deadline = time.monotonic() + ONCE_SEND_LIMIT_SECONDS
        is_empty = self.sender.drain(deadline)
        dropped = self.sender.invalid_dropped + self.spool.dropped_since_start
        if not is_empty or len(self.writer):
            if time.monotonic() >= deadline:
                log.error("round done: sending stopped at the --once limit of %gs", ONCE_SEND_LIMIT_SECONDS)
            waiting = len(self.spool)
            if waiting:
                log.error("round done: %s %s in the spool %s for the next run", plural(waiting, "result"),
                          "stays" if waiting == 1 else "stay", self.spool.path)
            return 1
        if dropped:
            log.error("round done: spool empty, but %s dropped (see the errors above)", plural(dropped, "result"))
            return 1
        log.info("round done: every result delivered")
        return 0

    def run_forever(self) -> int:
        """Check each target every interval, and send from the spool meanwhile, until stopped."""
        if len(self.spool):
            log.info("spool holds %s from an earlier run, sending them first", plural(len(self.spool), "result"))
        self._sender_thread = threading.Thread(target=self.sender.run, args=(self._wake_sender,),
                                               name="sender", daemon=True)
        self._sender_thread.start()
        if self.source is not None:
            self._pull_first_list()  # none yet: the refresh thread keeps asking; the agent does not exit
            threading.Thread(target=self.source.run, name="targets", daemon=True).start()
        scheduler = self.spread_schedule()
        while not self.stop.is_set():
            self._apply_new_list()
            scheduler.run_pending()
            idle = scheduler.idle_seconds
            self.stop.wait(MAX_IDLE_SECONDS if idle is None else min(max(idle, 0.01), MAX_IDLE_SECONDS))
        return 0

    def spread_schedule(self, clock: Callable[[], float] = time.monotonic) -> MonotonicScheduler:
        """A scheduler on `clock` (a monotonic one, so a step of the wall clock moves no check) for `self.specs`."""
        scheduler = self._scheduler = MonotonicScheduler(clock)
        self._add_slot_jobs(scheduler, self.specs)
        return scheduler

    def replace_specs(self, specs: Sequence[CheckSpec]) -> None:
        """Check `specs` from now on instead: new targets start, removed ones stop, changed ones change.

        Targets are matched by spec name. One unchanged, or changed but for its interval, keeps its
        slot and so its rhythm (laying every slot out afresh would check early slots at once and
        put late ones off, and a refresh more often than an interval would starve them). New ones,
        and those whose interval changed, get slots of their own spread from now. Call it on the
        schedule's thread (a job of its own, say); a check in flight finishes with its old settings.
        """
        self.specs = list(specs)
        scheduler = self._scheduler
        if scheduler is None:
            return
        wanted = {spec.name: spec for spec in self.specs}
        kept: set[str] = set()
        for job in list(scheduler.jobs):
            members = job.job_func.args[0]  # the list the slot job submits: changed in place
            staying = []
            for old in members:
                new = wanted.get(old.name)
                if new is not None and new.interval_seconds == old.interval_seconds and old.name not in kept:
                    kept.add(old.name)
                    staying.append(new)
            members[:] = staying
            if not staying:
                scheduler.cancel_job(job)
        self._add_slot_jobs(scheduler, [spec for spec in self.specs if spec.name not in kept])

    def _pull_first_list(self) -> bool:
        """Take the backend's (or the cached) list as the specs to check; False when there is neither."""
        targets = self.source.first_list()
        if targets is None:
            return False
        self.specs = list(targets.specs)
        return True

    def _apply_new_list(self) -> None:
        """Check the list the refresh thread fetched last, if any changed, from now on (on the schedule's thread)."""
        targets = self.source.take() if self.source is not None else None
        if targets is None:
            return
        before = {spec.name: spec for spec in self.specs}
        after = {spec.name: spec for spec in targets.specs}
        added = sum(1 for name in after if name not in before)
        removed = sum(1 for name in before if name not in after)
        changed = sum(1 for name, spec in after.items() if name in before and before[name] != spec)
        if added or removed or changed or list(before) != list(after):
            self.replace_specs(targets.specs)
            log.info("targets: now %s (%d added, %d removed, %d changed)", plural(len(after), "target"),
                     added, removed, changed)

    def _add_slot_jobs(self, scheduler: MonotonicScheduler, specs: Sequence[CheckSpec]) -> None:
        """One `schedule` job per slot of the spread (see `spread_slots`), per interval, each due every interval.

        Slot s runs first at now + s x interval / slots, then every interval after that (see
        MonotonicJob). One job per slot rather than per target: `run_pending` looks at every job each
        time it is called, which at 10,000 targets costs about 10 ms a call.
        """
        by_interval: dict[float, list[CheckSpec]] = {}
        for spec in specs:
            by_interval.setdefault(spec.interval_seconds, []).append(spec)
        start, wall_start = scheduler.clock(), time.time()
        for interval, group in by_interval.items():
            slots: dict[int, list[CheckSpec]] = {}
            for spec, slot in zip(group, spread_slots(len(group), interval)):
                slots.setdefault(slot, []).append(spec)
            step = interval / len(slots)
            for slot, members in slots.items():
                job = scheduler.every(interval).seconds.do(self.submit_all, members)
                # schedule has no start offset; its next_run is public.
                job.next_run = scheduler.at(start + slot * step)
            log.info("schedule: %s in %s %.0fms apart, every %gs, from %s", plural(len(group), "target"),
                     plural(len(slots), "slot"), step * 1000, interval,
                     dt.datetime.fromtimestamp(wall_start, dt.timezone.utc).isoformat(timespec="milliseconds"))

    def _longest_timeout(self) -> float:
        return max((spec.timeout_seconds for spec in self.specs), default=0.0)

    def shutdown(self) -> None:
        """Stop checking, commit every result, give an in-flight POST a bounded moment, leave the rest spooled."""
        self.stop.set()
        self._wake_sender.set()
        if not self.engine.close(self._longest_timeout() + 1):  # checks end by their own deadline
            log.warning("check engine still busy at shutdown, leaving it")
        self.writer.close()  # every result checked so far is committed before the process exits
        sender = self._sender_thread
        if sender is not None:
            sender.join(SENDER_GRACE_SECONDS)
            if sender.is_alive():
                # Its batch stays spooled; if the backend did store it, the event_uids make the
                # resend on the next start harmless.
                log.warning("sender still waiting for the backend, leaving it: its results stay spooled")
                return  # the daemon thread still uses the spool: do not close it under it
        self.spool.close()
        self._sender_session.close()
        if self._source_session is not None:
            self._source_session.close()


def log_start(settings: AgentSettings, once: bool) -> None:
    """Say what the agent checks, how often and where it sends: TARGET_URL's URLs, or the backend's list."""
    if settings.pulls_targets:
        log.info("agent %s started: TARGET_URL is not set, so it checks the targets the backend serves "
                 "(GET %s/agent/targets)%s, sending to %s", settings.agent_name, settings.backend_url,
                 " once" if once else "", settings.backend_url)
        return
    urls = settings.target_urls
    named = ", ".join(urls[:FIRST_FEW_TARGETS])
    if len(urls) > FIRST_FEW_TARGETS:
        named += f" and {len(urls) - FIRST_FEW_TARGETS} more"
    interval = "once" if once else f"every {settings.check_interval_seconds:g}s"
    log.info("agent started: %s %s (%s), sending to %s", plural(len(urls), "target"), interval, named,
             settings.backend_url)


def install_signal_handlers(stop: threading.Event) -> None:
    """Make SIGINT and SIGTERM set `stop`; the loops notice it and wind down."""
    def handle(signum, frame):
        stop.set()  # no logging here: a handler may interrupt the main thread mid-log
    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Check target URLs and report to the backend.")
    parser.add_argument("--once", action="store_true",
                        help="run one round and send every spooled event; exit 0 when all were "
                             "delivered, else 1 (the rest stay spooled)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the agent; the exit status is 0 (ok), 1 (--once: not all delivered) or 2 (bad config)."""
    args = parse_args(argv)
    try:
        environ = read_environment()
        settings = load_settings(environ)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        # Two agents draining one spool would send its results twice.
        lock_spool(settings.spool_file)
    except SpoolInUse as exc:
        print(f"agent not started: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"configuration error: AGENT_SPOOL_FILE: cannot lock {str(settings.spool_file)!r}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        configure_logging(settings)
    except OSError as exc:
        print(f"configuration error: AGENT_LOG_FILE: cannot open {str(settings.log_file)!r}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2

    try:
        spool = Spool(settings.spool_file, settings.spool_max_events)
    except (OSError, sqlite3.Error) as exc:
        print(f"configuration error: AGENT_SPOOL_FILE: cannot open {str(settings.spool_file)!r}: {exc}",
              file=sys.stderr)
        return 2

    if settings.metrics_port is not None:
        try:
            agent_metrics.serve(settings.metrics_host, settings.metrics_port, spool.__len__)
        except OSError as exc:
            print(f"configuration error: AGENT_METRICS_PORT: cannot listen on {settings.metrics_host}:"
                  f"{settings.metrics_port}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        log.info("agent metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)

    stop = threading.Event()
    install_signal_handlers(stop)
    log_start(settings, args.once)
    agent = Agent(settings, stop, spool, environ)  # .env's CA bundle and proxies count for the checks too
    try:
        status = agent.run_once() if args.once else agent.run_forever()
    finally:
        agent.shutdown()
    log.info("agent stopped")
    return status


if __name__ == "__main__":
    sys.exit(main())
