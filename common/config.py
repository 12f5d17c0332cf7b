"""ConfigError, the dotenv file rule and the small value parsers both the agent and the backend use (SPEC §2)."""

from __future__ import annotations

import math
import os
import ssl
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parents[1]
MIN_API_KEY_LENGTH = 16  # make_env.py writes 43 characters; a short key can be guessed


class ConfigError(Exception):
    """One missing or invalid configuration value; the entry script prints it and exits with status 2."""

    def __init__(self, key: str, problem: str):
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


def repo_path(raw: str | Path) -> Path:
    """`raw` as an absolute path: a relative one resolves against the repository, never the cwd (SPEC §1)."""
    path = Path(raw).expanduser()
    return path if path.is_absolute() else ROOT / path


def env_file() -> Path:
    """The dotenv file to read: ENV_FILE (which must exist when set), else ROOT/.env (which may not)."""
    raw = os.environ.get("ENV_FILE", "").strip()
    if not raw:
        return ROOT / ".env"
    path = repo_path(raw)
    if not path.exists():
        raise ConfigError("ENV_FILE", f"no such file {path}")
    if path.is_dir():
        raise ConfigError("ENV_FILE", f"{path} is a folder, not a file")
    return path


def read_environment() -> dict[str, str]:
    """The process environment over the values of the dotenv file; entry scripts only."""
    path = env_file()
    values: dict[str, str] = {}
    if path.exists():
        values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    values.update(os.environ)  # a real environment variable wins over the file
    return values


def text(environ: Mapping[str, str], key: str) -> str:
    """The stripped value of `key`; "" when it is unset or blank (blank means "use the default")."""
    return (environ.get(key) or "").strip()


def both_or_neither(environ: Mapping[str, str], first: str, second: str) -> None:
    """Two keys that only work together (a channel's two halves): one without the other is a mistake, not "off"."""
    if text(environ, first) and not text(environ, second):
        raise ConfigError(second, f"is required when {first} is set")
    if text(environ, second) and not text(environ, first):
        raise ConfigError(first, f"is required when {second} is set")


def ca_file(environ: Mapping[str, str], key: str) -> Path | None:
    """A PEM file of CA certificates, loaded once here so a bad one stops the start, not every attempt."""
    raw = text(environ, key)
    if not raw:
        return None
    path = repo_path(raw)
    try:
        ssl.create_default_context(cafile=str(path))
    except FileNotFoundError:
        raise ConfigError(key, f"no such file {path}") from None
    except (ssl.SSLError, OSError, ValueError):
        raise ConfigError(key, f"{path} is not a file of PEM certificates") from None
    return path


def whole_number(environ: Mapping[str, str], key: str, default: int, low: int, high: int | None = None) -> int:
    """An int from `low` to `high` (no upper bound when None), or `default` when unset."""
    raw = text(environ, key)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"of at least {low}" if high is None else f"from {low} to {high}"
        raise ConfigError(key, f"must be a whole number {bounds}, got {raw!r}")
    return value


def number(environ: Mapping[str, str], key: str, default: float, low: float, *, above: bool = False,
           high: float | None = None) -> float:
    """A finite float of at least `low` (greater than `low` when `above`) and at most `high`, or `default` when unset."""
    raw = text(environ, key)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if (not math.isfinite(value) or value < low or (above and value == low)
            or (high is not None and value > high)):
        bounds = f"greater than {low:g}" if above else f"of at least {low:g}"
        if high is not None:
            bounds += f" and at most {high:g}"
        raise ConfigError(key, f"must be a number {bounds}, got {raw!r}")
    return value


def boolean(environ: Mapping[str, str], key: str, default: bool) -> bool:
    """true/false (also 1/0, yes/no, on/off), or `default` when unset."""
    raw = text(environ, key).lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(key, f"must be true or false, got {raw!r}")


def choice(environ: Mapping[str, str], key: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (case-insensitive); the first one when unset."""
    raw = text(environ, key).lower()
    if not raw:
        return choices[0]
    if raw not in choices:
        raise ConfigError(key, f"must be {' or '.join(choices)}, got {raw!r}")
    return raw


def http_url_problem(url: str) -> str | None:
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


def api_key_warning(api_key: str) -> str | None:
    """A warning for an API_KEY too short to be safe (never quoting it), or None."""
    if len(api_key) >= MIN_API_KEY_LENGTH:
        return None
    return (f"API_KEY is shorter than {MIN_API_KEY_LENGTH} characters and easy to guess; use a long random "
            "secret, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'")
