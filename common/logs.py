"""The one log format of every process: `[YYYY-MM-DD HH:MM:SS] [LEVEL] message`, UTC, stdout plus a file."""

from __future__ import annotations

import logging
import sys
import time
from typing import Iterable

LOG_FORMAT = "[%(asctime)s] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def utc_formatter() -> logging.Formatter:
    """The shared format, with times in UTC like every stored timestamp."""
    formatter = logging.Formatter(LOG_FORMAT, DATE_FORMAT)
    formatter.converter = time.gmtime
    return formatter


def configure_logging(file_handler: logging.Handler, quiet: Iterable[str] = ()) -> None:
    """Send every INFO record to stdout and `file_handler`; the `quiet` loggers only from WARNING up."""
    formatter = utc_formatter()
    root = logging.getLogger()
    for handler in (logging.StreamHandler(sys.stdout), file_handler):
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """`1 target`, `2 targets` (`nouns` for an irregular plural: `2 processes`)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
