"""Logging for the agent process: the shared format (common/logs.py), stdout plus the rotated agent.log."""

from __future__ import annotations

import logging
import logging.handlers

from agent.config import AgentSettings
from common.config import api_key_warning
from common.logs import configure_logging as configure_shared_logging

log = logging.getLogger("agent")


def log_file_handler(settings: AgentSettings) -> logging.Handler:
    """The agent.log handler: rotated at `log_max_bytes`, keeping `log_backups` old files."""
    settings.log_file.parent.mkdir(parents=True, exist_ok=True)
    return logging.handlers.RotatingFileHandler(settings.log_file, maxBytes=settings.log_max_bytes,
                                                backupCount=settings.log_backups, encoding="utf-8")


def configure_logging(settings: AgentSettings) -> None:
    """Log to stdout and agent.log, one UTC line per fact (SPEC §7); then warn about weak settings."""
    configure_shared_logging(log_file_handler(settings), quiet=("urllib3",))
    warning = api_key_warning(settings.api_key)
    if warning:
        log.warning(warning)
