"""Agent settings: read once from the environment into a typed, frozen object (SPEC §2)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from agent.allow_list import AllowList, parse_allow_list
from common.config import ROOT, ConfigError, number, read_environment, repo_path, text, whole_number
from common.config import http_url_problem as _http_url_problem

__all__ = ["ROOT", "AgentSettings", "ConfigError", "load_settings", "read_environment"]

DEFAULT_CHECK_INTERVAL_SECONDS = 30.0
DEFAULT_REQUEST_TIMEOUT_SECONDS = 5.0
DEFAULT_BACKEND_URL = "http://localhost:5000"
DEFAULT_LOG_FILE = ROOT / "agent" / "agent.log"
DEFAULT_MAX_WORKERS = 500  # checks in flight at once on the engine (agent/engine.py)
DEFAULT_SPOOL_FILE = ROOT / "agent" / "spool.db"
DEFAULT_TARGETS_CACHE = ROOT / "agent" / "targets-cache.json"
MAX_AGENT_NAME_LENGTH = 255  # what the backend stores (backend/validation.py)
DEFAULT_BATCH_SIZE = 500
MAX_BATCH_SIZE = 1000  # the backend takes at most 1000 events per request (SPEC §4)
DEFAULT_SPOOL_MAX_EVENTS = 100_000
DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_LOG_BACKUPS = 5


@dataclass(frozen=True)
class AgentSettings:
    target_urls: tuple[str, ...]  # empty: the agent pulls the backend's list (SPEC §8)
    check_interval_seconds: float
    request_timeout_seconds: float
    backend_url: str
    api_key: str = field(repr=False)
    log_file: Path
    max_workers: int
    spool_file: Path = DEFAULT_SPOOL_FILE
    batch_size: int = DEFAULT_BATCH_SIZE
    spool_max_events: int = DEFAULT_SPOOL_MAX_EVENTS
    log_max_bytes: int = DEFAULT_LOG_MAX_BYTES
    log_backups: int = DEFAULT_LOG_BACKUPS
    agent_name: str = "agent"
    targets_cache: Path = DEFAULT_TARGETS_CACHE
    allow: AllowList | None = None  # AGENT_ALLOW: the hosts a pulled target may name; None allows every host
    metrics_port: int | None = None  # AGENT_METRICS_PORT: serve /metrics there; None: off
    metrics_host: str = "127.0.0.1"

    @property
    def pulls_targets(self) -> bool:
        """Whether the targets come from the backend's list (TARGET_URL unset or empty, SPEC §8)."""
        return not self.target_urls


def load_settings(environ: Mapping[str, str]) -> AgentSettings:
    """Build AgentSettings from `environ` alone, raising ConfigError for the first bad value (SPEC §2)."""
    return AgentSettings(
        target_urls=_target_urls(environ),
        check_interval_seconds=_positive_number(environ, "CHECK_INTERVAL_SECONDS",
                                                DEFAULT_CHECK_INTERVAL_SECONDS),
        request_timeout_seconds=_positive_number(environ, "REQUEST_TIMEOUT_SECONDS",
                                                 DEFAULT_REQUEST_TIMEOUT_SECONDS),
        backend_url=_backend_url(environ),
        api_key=_api_key(environ),
        log_file=_path(environ, "AGENT_LOG_FILE", DEFAULT_LOG_FILE),
        max_workers=_whole_number(environ, "AGENT_MAX_WORKERS", DEFAULT_MAX_WORKERS, minimum=1),
        spool_file=_path(environ, "AGENT_SPOOL_FILE", DEFAULT_SPOOL_FILE),
        batch_size=_whole_number(environ, "AGENT_BATCH_SIZE", DEFAULT_BATCH_SIZE, minimum=1,
                                 maximum=MAX_BATCH_SIZE),
        spool_max_events=_whole_number(environ, "AGENT_SPOOL_MAX_EVENTS", DEFAULT_SPOOL_MAX_EVENTS,
                                       minimum=1),
        # 0 turns rotation off, as it does for logging.handlers.RotatingFileHandler.
        log_max_bytes=_whole_number(environ, "AGENT_LOG_MAX_BYTES", DEFAULT_LOG_MAX_BYTES, minimum=0),
        log_backups=_whole_number(environ, "AGENT_LOG_BACKUPS", DEFAULT_LOG_BACKUPS, minimum=0),
        agent_name=_agent_name(environ),
        targets_cache=_path(environ, "AGENT_TARGETS_CACHE", DEFAULT_TARGETS_CACHE),
        allow=_allow_list(environ),
        metrics_port=_metrics_port(environ),
        metrics_host=_value(environ, "AGENT_METRICS_HOST") or "127.0.0.1",
    )


def _metrics_port(environ: Mapping[str, str]) -> int | None:
    if _value(environ, "AGENT_METRICS_PORT") is None:
        return None  # SPEC §12: off unless asked for
    return _whole_number(environ, "AGENT_METRICS_PORT", 0, minimum=1, maximum=65535)


def _target_urls(environ: Mapping[str, str]) -> tuple[str, ...]:
    raw = _value(environ, "TARGET_URL")
    if raw is None:
        return ()  # SPEC §2: unset means the targets the backend serves
    urls: dict[str, None] = {}  # a dict keeps the order and finds a repeat in O(1): 10,000 targets
    for url in (part.strip() for part in raw.split(",")):
        if not url or url in urls:
            continue
        problem = _http_url_problem(url)
        if problem:
            raise ConfigError("TARGET_URL", f"every URL must be http(s) with a host, {url!r} {problem}")
        urls[url] = None
    if not urls:
        raise ConfigError("TARGET_URL", f"must list at least one http(s) URL, got {raw!r}")
    return tuple(urls)


def _allow_list(environ: Mapping[str, str]) -> AllowList | None:
    raw = _value(environ, "AGENT_ALLOW")
    if raw is None:
        return None
    try:
        return parse_allow_list(raw)
    except ValueError as problem:
        raise ConfigError("AGENT_ALLOW", str(problem)) from None


def _agent_name(environ: Mapping[str, str]) -> str:
    name = _value(environ, "AGENT_NAME") or socket.gethostname() or "agent"
    if len(name) > MAX_AGENT_NAME_LENGTH or not name.isprintable():
        raise ConfigError("AGENT_NAME", f"must be printable text of at most {MAX_AGENT_NAME_LENGTH} characters")
    return name


def _backend_url(environ: Mapping[str, str]) -> str:
    raw = _value(environ, "BACKEND_URL")
    if raw is None:
        return DEFAULT_BACKEND_URL
    url = raw.rstrip("/")
    problem = _http_url_problem(url)
    if problem:
        raise ConfigError("BACKEND_URL", f"must be an http(s) URL with a host, {raw!r} {problem}")
    return url


def _api_key(environ: Mapping[str, str]) -> str:
    # Never put the value into a message: it is a secret (SPEC §2).
    key = _value(environ, "API_KEY")
    if key is None:
        raise ConfigError("API_KEY", "is required (the shared secret the backend expects)")
    if not key.isprintable() or not key.isascii():
        raise ConfigError("API_KEY", "must be printable ASCII, as it is sent in an HTTP header")
    return key


# Thin names over the shared parsers (common/config.py), in the words load_settings uses.
def _value(environ: Mapping[str, str], key: str) -> str | None:
    """The stripped value of `key`, or None when it is unset or blank (blank means "use the default")."""
    return text(environ, key) or None


def _positive_number(environ: Mapping[str, str], key: str, default: float) -> float:
    return number(environ, key, default, 0.0, above=True)


def _whole_number(environ: Mapping[str, str], key: str, default: int, *, minimum: int,
                  maximum: int | None = None) -> int:
    return whole_number(environ, key, default, minimum, maximum)


def _path(environ: Mapping[str, str], key: str, default: Path) -> Path:
    raw = text(environ, key)
    return repo_path(raw) if raw else default  # never against the cwd (SPEC §1)
