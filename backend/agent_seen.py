"""When to record that an agent's events arrived: at most once per few seconds per agent name, per process."""

from __future__ import annotations

import threading
import time
from typing import Callable

EVENT_WRITE_SECONDS = 5.0  # GET /agents reads "last heard from"; seconds late is fine, a write per request is not
MAX_REMEMBERED_NAMES = 10_000  # names come from clients: past this many, start afresh rather than grow


class AgentSeenThrottle:
    """A small map of agent name -> when this process last wrote its last_event_at (monotonic time)."""

    def __init__(self, every_seconds: float = EVENT_WRITE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.every_seconds = every_seconds
        self.clock = clock
        self._lock = threading.Lock()  # gunicorn threads share one process
        self._written: dict[str, float] = {}

    def claim(self, names: set[str]) -> list[str]:
        """The names whose write is due now, marked written; sorted, so writers lock rows in one order."""
        now = self.clock()
        with self._lock:
            if len(self._written) > MAX_REMEMBERED_NAMES:
                self._written.clear()  # costs one extra write per agent, once
            due = sorted(n for n in names if now - self._written.get(n, -self.every_seconds) >= self.every_seconds)
            for name in due:
                self._written[name] = now
        return due

    def forget(self, names: list[str]) -> None:
        """Undo a claim whose write was rolled back, so the next batch writes instead."""
        with self._lock:
            for name in names:
                self._written.pop(name, None)
