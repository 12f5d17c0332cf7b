"""Agent settings: read once from the environment into a typed, frozen object (SPEC §2)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_TARGET_URL = "https://example.com"
DEFAULT_CHECK_INTERVAL_SECONDS = 30.0
DEFAULT_REQUEST_TIMEOUT_SECONDS = 5.0
DEFAULT_BACKEND_URL = "http://localhost:5000"
DEFAULT_LOG_FILE = ROOT / "agent" / "agent.log"
DEFAULT_MAX_WORKERS = 32


class ConfigError(Exception):
    """One invalid configuration value; the entry script prints it and exits with status 2."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class AgentSettings:
    target_urls: tuple[str, ...]
    check_interval_seconds: float
    request_timeout_seconds: float
    backend_url: str
    api_key: str = field(repr=False)
    log_file: Path
    max_workers: int


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
        log_file=_log_file(environ),
        max_workers=_max_workers(environ),
    )


def read_environment() -> dict[str, str]:
    """The process environment over the values of the dotenv file (`ENV_FILE`, else ROOT/.env)."""
    env_file = Path(os.environ.get("ENV_FILE") or ROOT / ".env").expanduser()
    if not env_file.is_absolute():
        env_file = ROOT / env_file  # files resolve against the repository, never the cwd (SPEC §1)
    values: dict[str, str] = {}
    if env_file.is_file():
        values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
    values.update(os.environ)  # a real environment variable wins over the file
    return values


def _value(environ: Mapping[str, str], key: str) -> str | None:
    """The stripped value of `key`, or None when it is unset or blank (blank means "use the default")."""
    raw = environ.get(key)
    if raw is None or not raw.strip():
        return None
    return raw.strip()


def _http_url_problem(url: str) -> str | None:
    """Why `url` is not a usable http(s) URL with a host, or None when it is."""
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a malformed port
    except ValueError:
        return "is malformed"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host"
    if any(ch.isspace() for ch in url):
        return "contains whitespace"
    return None


def _target_urls(environ: Mapping[str, str]) -> tuple[str, ...]:
    raw = _value(environ, "TARGET_URL")
    if raw is None:
        return (DEFAULT_TARGET_URL,)
    urls: list[str] = []
    for url in (part.strip() for part in raw.split(",")):
        if not url or url in urls:
            continue
        problem = _http_url_problem(url)
        if problem:
            raise ConfigError("TARGET_URL", f"every URL must be http(s) with a host, {url!r} {problem}")
        urls.append(url)
    if not urls:
        raise ConfigError("TARGET_URL", f"must list at least one http(s) URL, got {raw!r}")
    return tuple(urls)


def _positive_number(environ: Mapping[str, str], key: str, default: float) -> float:
    raw = _value(environ, key)
    if raw is None:
        return default
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise ConfigError(key, f"must be a number greater than 0, got {raw!r}")
    return number


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


def _log_file(environ: Mapping[str, str]) -> Path:
    raw = _value(environ, "AGENT_LOG_FILE")
    if raw is None:
        return DEFAULT_LOG_FILE
    path = Path(raw).expanduser()
    return path if path.is_absolute() else ROOT / path


def _max_workers(environ: Mapping[str, str]) -> int:
    raw = _value(environ, "AGENT_MAX_WORKERS")
    if raw is None:
        return DEFAULT_MAX_WORKERS
    try:
        workers = int(raw)
    except ValueError:
        workers = 0
    if workers < 1:
        raise ConfigError("AGENT_MAX_WORKERS", f"must be a whole number of at least 1, got {raw!r}")
    return workers
