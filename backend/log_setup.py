"""Logging for the backend process: one format, UTC times, stdout plus a rotating server.log."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from concurrent_log_handler import ConcurrentRotatingFileHandler

LOG_FORMAT = "[%(asctime)s] [%(levelname)s] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def configure_logging(log_file: Path, max_bytes: int = 10 * 1024 * 1024, backups: int = 5) -> None:
    """Send every record to stdout and `log_file`, rotated by size; called once by the entry script."""
    formatter = logging.Formatter(LOG_FORMAT, DATE_FORMAT)
    formatter.converter = time.gmtime  # the same UTC clock as every stored timestamp
    log_file.parent.mkdir(parents=True, exist_ok=True)
    # Several gunicorn workers write one server.log: this handler locks the file while it writes
    # and rotates, where the stdlib RotatingFileHandler would let each process rotate on its own.
    rotating = ConcurrentRotatingFileHandler(str(log_file), maxBytes=max_bytes, backupCount=backups,
                                             encoding="utf-8", use_gzip=False)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout), rotating]
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    # httpx logs every request URL at INFO, and a Bot API URL contains the bot token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
