"""Console channel: the SPEC §6 block on stdout and appended to backend/server.log."""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TextIO

from backend.messages import Notice, console_block
from backend.notifiers.base import DeliveryError, Notifier

# One block at a time, so two alerts never interleave their lines.
_write_lock = threading.Lock()


class ConsoleNotifier(Notifier):
    """Always on: prints the alert block and appends it to the server log."""

    channel = "CONSOLE"

    def __init__(self, log_file: Path, stream: TextIO | None = None):
        self.log_file = log_file
        self.stream = stream

    def send(self, notice: Notice) -> str | None:
        """Write the block to both places; a failed write is a failed attempt."""
        block = console_block(notice) + "\n"
        try:
            with _write_lock:
                stream = self.stream or sys.stdout
                stream.write(block)
                stream.flush()
                # Appended directly rather than through logging, so the block is exact and a
                # failed write (full disk, bad permissions) is reported instead of swallowed.
                self.log_file.parent.mkdir(parents=True, exist_ok=True)
                with open(self.log_file, "a", encoding="utf-8") as log:
                    log.write(block)
        except OSError as exc:
            raise DeliveryError(f"could not write the alert block: {exc.strerror or exc}") from exc
        return None
