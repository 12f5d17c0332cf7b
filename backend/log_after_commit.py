"""Log lines held until the transaction that wrote what they tell of has committed.

A rolled-back transaction (a group commit's failed attempt, which runs again alone) logs nothing,
so no line tells of an alert that was never stored, and none is written twice. The lines are
written after the write lock is released: on SQLite every writer waits while the one holding it
works, and a busy batch logs a line per deduplicated failure.
"""

from __future__ import annotations

import logging


class LogAfterCommit:
    """Collects log records for `logger`; `emit()` writes them once the caller's transaction committed."""

    def __init__(self, logger: logging.Logger, hold: bool = True):
        self.logger = logger
        self.hold = hold  # False: write each line at once (a caller that commits right after, or never logs much)
        self.records: list[tuple[int, str, tuple]] = []

    def info(self, message: str, *args) -> None:
        self._add(logging.INFO, message, args)

    def warning(self, message: str, *args) -> None:
        self._add(logging.WARNING, message, args)

    def _add(self, level: int, message: str, args: tuple) -> None:
        if not self.hold:
            self.logger.log(level, message, *args)
        elif self.logger.isEnabledFor(level):
            self.records.append((level, message, args))

    def emit(self) -> None:
        """Write the held lines, in the order they were made."""
        records, self.records = self.records, []
        for level, message, args in records:
            self.logger.log(level, message, *args)
