"""The backend's background loops (retention, rollups, the targets-file watch, the deadline timer) share one shape.

Each is a daemon thread that makes one pass every few seconds until the app closes, usually in the
one process holding its lease. What they share lives here: starting, stopping within a bound,
giving the lease up so another process takes over at once, and saying a failing pass once (one
ERROR line, with a traceback only for what is not a database error) and its end once (INFO),
instead of a line per pass while the database is away.
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy.exc import SQLAlchemyError

from backend.database import DatabaseBusyError
from backend.leases import Lease
from backend.startup import first_line

CLOSE_TIMEOUT_SECONDS = 5.0


class BackgroundLoop:
    """Calls `run_once()` every `interval_seconds` on a daemon thread named `thread_name`, until `close()`."""

    what = "background pass"  # how the log lines name the loop: "<what> failed, trying again every 10 s: ..."
    quiet_errors: tuple[type[Exception], ...] = (SQLAlchemyError, DatabaseBusyError)  # said without a traceback

    def __init__(self, thread_name: str, interval_seconds: float, lease: Lease | None = None):
        self.interval_seconds = interval_seconds
        self.lease = lease
        self._log = logging.getLogger(type(self).__module__)
        self._stopping = threading.Event()
        self._failing = False
        self._holds = False   # whether this process held the lease when it last asked
        self._renew_at = 0.0  # when to ask again (monotonic)
        self._thread = threading.Thread(target=self._run, daemon=True, name=thread_name)

    def run_once(self):
        """One pass; subclasses say what it does."""
        raise NotImplementedError

    def holds(self, retry_seconds: float | None = None) -> bool:
        """Whether this process holds the lease: taken or renewed every third of it, and asked for again
        after `retry_seconds` (default the same) while another process holds it."""
        now = time.monotonic()
        if now >= self._renew_at:
            self._holds = bool(self.lease.take())
            wait = self.lease.seconds / 3 if self._holds or retry_seconds is None else retry_seconds
            self._renew_at = now + wait
        return self._holds

    @property
    def holds_lease(self) -> bool:
        """Whether this process held the lease at its last pass."""
        return self._holds

    def start(self) -> None:
        """Start the thread; the first pass comes one interval later."""
        self._thread.start()

    def close(self) -> None:
        """Stop after the pass in hand and give the lease up, so another process takes over at once."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=CLOSE_TIMEOUT_SECONDS)
        if self.lease is not None and self._thread.ident is not None:  # never started: no lease taken
            self.lease.release()

    def pass_safely(self) -> None:
        """run_once for the thread: a failure is one ERROR line and its end one INFO line, not a line per pass."""
        try:
            self.run_once()
        except Exception as exc:  # a database outage, most likely: try again at the next pass
            if not self._failing:
                quiet = isinstance(exc, self.quiet_errors)
                self._log.error("%s failed, trying again every %g s: %s", self.what, self.interval_seconds,
                                first_line(getattr(exc, "orig", None) or exc), exc_info=not quiet)
                self._failing = True
            return
        if self._failing:
            self._log.info("%s works again", self.what)
            self._failing = False

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_seconds):
            self.pass_safely()
