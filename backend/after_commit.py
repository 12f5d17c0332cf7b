"""What a transaction did, told only once it has committed: its log lines and its metric counts.

A rolled-back transaction (a group commit's failed attempt, which runs again alone) logs and
counts nothing, so no line or counter tells of an alert that was never stored, and none is
written or counted twice. The lines are written after the write lock is released: on SQLite
every writer waits while the one holding it works, and a busy batch logs a line per
deduplicated failure.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Callable


class AfterCommit:
    """Holds log records for `logger` and other calls (metric counts); `emit()` makes them once committed."""

    def __init__(self, logger: logging.Logger, hold: bool = True):
        self.logger = logger
        self.hold = hold  # False: carry out each at once (a caller that commits right after, or never logs much)
        self.held: list[Callable[[], None]] = []

    def info(self, message: str, *args) -> None:
        self._log(logging.INFO, message, args)

    def warning(self, message: str, *args) -> None:
        self._log(logging.WARNING, message, args)

    def then(self, action: Callable[..., object], *args) -> None:
        """Call `action(*args)` once committed: a metrics count, or a line for another logger."""
        if self.hold:
            self.held.append(partial(action, *args))
        else:
            action(*args)

    def _log(self, level: int, message: str, args: tuple) -> None:
        if self.logger.isEnabledFor(level):  # a line nobody would see is not held
            self.then(self.logger.log, level, message, *args)

    def emit(self) -> None:
        """Carry out what was held, in the order it was told."""
        held, self.held = self.held, []
        for action in held:
            action()
