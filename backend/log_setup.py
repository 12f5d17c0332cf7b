"""Logging for the backend process: the shared format (common/logs.py), stdout plus a rotating server.log."""

from __future__ import annotations

import logging
from pathlib import Path

from concurrent_log_handler import ConcurrentRotatingFileHandler

from backend.ping_tokens import redact_ping_paths
from common.logs import configure_logging as configure_shared_logging


def _redact_ping_tokens(record: logging.LogRecord) -> bool:
    """Rewrite a request line so a push target's ping token never reaches the log (SPEC §9)."""
    message = record.getMessage()
    if "/ping/" in message:
        record.msg, record.args = redact_ping_paths(message), ()
    return True


def configure_logging(log_file: Path, max_bytes: int = 10 * 1024 * 1024, backups: int = 5) -> None:
    """Send every record to stdout and `log_file`, rotated by size; called once by the entry script."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    # Several gunicorn workers write one server.log: this handler locks the file while it writes
    # and rotates, where the stdlib RotatingFileHandler would let each process rotate on its own.
    rotating = ConcurrentRotatingFileHandler(str(log_file), maxBytes=max_bytes, backupCount=backups,
                                             encoding="utf-8", use_gzip=False)
    # httpx logs every request URL at INFO, and a Bot API URL contains the bot token.
    configure_shared_logging(rotating, quiet=("httpx", "httpcore"))
    # Flask's development server (FLASK_DEBUG=true) logs each request line, path included.
    logging.getLogger("werkzeug").addFilter(_redact_ping_tokens)
