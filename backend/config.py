"""Backend settings: loaded once from the environment into a typed, frozen object (SPEC §2)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from backend.apprise_urls import unusable_urls
from backend.messages import LANGUAGES as NOTIFY_LANGUAGES
from backend.dashboard_settings import DashboardSettings, load_dashboard_settings
from backend.email_settings import EmailSettings, load_email_settings
from common.config import ROOT, ConfigError, both_or_neither, ca_file, choice, http_url_problem, read_environment, repo_path
from common.config import boolean as _bool
from common.config import number as _number
from common.config import text as _text
from common.config import whole_number as _int

__all__ = ["ROOT", "ConfigError", "Settings", "database_url", "load_settings", "read_environment", "sqlite_file"]


LEASE_TIMEOUTS = 3  # NOTIFY_LEASE_SECONDS spans at least this many NOTIFY_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Settings:
    api_key: str = field(repr=False)
    database_url: str = field(repr=False)  # may carry the database password
    host: str = "127.0.0.1"
    port: int = 5000
    debug: bool = False
    failure_threshold: int = 3
    reminder_minutes: float | None = None  # REMINDER_MINUTES (SPEC §11): remind of OPEN alerts; None: off
    max_clock_skew_seconds: float = 300.0  # how far ahead of our clock an event's timestamp may be
    log_file: Path = ROOT / "backend" / "server.log"
    telegram_bot_token: str | None = field(default=None, repr=False)
    telegram_chat_id: str | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    webhook_url: str | None = field(default=None, repr=False)  # a hook URL's path is often a secret itself
    webhook_secret: str | None = field(default=None, repr=False)
    webhook_ca_file: Path | None = None  # a private CA the receiver's certificate chains to
    apprise_urls: tuple[str, ...] = field(default=(), repr=False)  # the default apprise channel's targets: tokens
    notify_retries: int = 3
    notify_backoff_seconds: float = 1.0
    notify_timeout_seconds: float = 10.0
    notify_lease_seconds: float = 30.0
    notify_poll_seconds: float = 0.2  # how often a channel's dispatcher looks at the outbox unless woken
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5
    retention_days: int = 30
    retention_interval_seconds: float = 3600.0
    # How often one process counts new events into the stats rollups: the route scans at most this
    # much of unrolled events, whatever the window.
    rollup_interval_seconds: float = 10.0
    workers: int = 2
    # The targets file (SPEC §8): used when it exists, or required when TARGETS_FILE names it.
    targets_file: Path = ROOT / "targets.yaml"
    targets_file_required: bool = False
    targets_poll_seconds: float = 1.0  # how often one backend process looks for a change of the file
    agent_refresh_seconds: float = 60.0  # handed to agents with their list (GET /agent/targets)
    # The environment the settings came from: `${NAME}` in the targets file is resolved from it
    # when the list is served to agents, and nowhere else.
    environment: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    notify_language: str = NOTIFY_LANGUAGES[0]
    email: EmailSettings | None = None  # the email channel (SMTP_*, SPEC §10); None when it is off
    metrics_token: str | None = field(default=None, repr=False)  # GET /metrics wants it as a bearer token
    dashboard: DashboardSettings | None = None  # the dashboard (DASHBOARD_PASSWORD, SPEC §12); None when it is off
    status_page: bool = False  # the public /status page (STATUS_PAGE=on, SPEC §12)

    def __post_init__(self) -> None:
        # The dispatcher renews its lease at half-life, before an attempt, and claims a row for one
        # lease length: with three attempt timeouts per lease, an attempt that starts just before
        # the renewal still ends with half an attempt to spare for recording it. Shorter, and a
        # second process could take the channel (or the row) while the attempt is still in flight.
        if self.notify_lease_seconds < LEASE_TIMEOUTS * self.notify_timeout_seconds:
            raise ConfigError("NOTIFY_LEASE_SECONDS", f"must be at least {LEASE_TIMEOUTS} x NOTIFY_TIMEOUT_SECONDS "
                              f"({LEASE_TIMEOUTS * self.notify_timeout_seconds:g}), got {self.notify_lease_seconds:g}")

    @property
    def telegram_enabled(self) -> bool:
        """Telegram is on when both its token and chat id are set (SPEC §2)."""
        return bool(self.telegram_bot_token and self.telegram_chat_id)

    @property
    def webhook_enabled(self) -> bool:
        """The webhook is on when WEBHOOK_URL is set; load_settings made sure WEBHOOK_SECRET is too (SPEC §10)."""
        return bool(self.webhook_url)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Validate every key the backend reads and return Settings, or raise ConfigError (SPEC §2)."""
    api_key = _text(environ, "API_KEY")
    if not api_key:
        raise ConfigError("API_KEY", "is required; set a long random secret in .env")
    token = _text(environ, "TELEGRAM_BOT_TOKEN")
    both_or_neither(environ, "TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID")
    webhook_url = _webhook_url(environ)
    return Settings(
        api_key=api_key,
        database_url=database_url(environ),
        host=_text(environ, "FLASK_HOST") or "127.0.0.1",
        port=_int(environ, "FLASK_PORT", 5000, low=1, high=65535),
        debug=_bool(environ, "FLASK_DEBUG", False),
        failure_threshold=_int(environ, "FAILURE_THRESHOLD", 3, low=1),
        reminder_minutes=_number(environ, "REMINDER_MINUTES", 0.0, low=0.0) or None,  # 0 or unset: off
        max_clock_skew_seconds=_number(environ, "MAX_CLOCK_SKEW_SECONDS", 300.0, low=1.0),
        log_file=_path(environ, "BACKEND_LOG_FILE", ROOT / "backend" / "server.log"),
        telegram_bot_token=token or None,
        telegram_chat_id=_text(environ, "TELEGRAM_CHAT_ID") or None,
        telegram_api_base_url=_url(environ, "TELEGRAM_API_BASE_URL", "https://api.telegram.org/bot"),
        webhook_url=webhook_url,
        webhook_secret=_text(environ, "WEBHOOK_SECRET") or None,
        webhook_ca_file=ca_file(environ, "WEBHOOK_CA_FILE"),
        apprise_urls=_apprise_urls(environ),
        notify_retries=_int(environ, "NOTIFY_RETRIES", 3, low=0, high=10),
        notify_backoff_seconds=_number(environ, "NOTIFY_BACKOFF_SECONDS", 1.0, low=0.0),
        notify_timeout_seconds=_number(environ, "NOTIFY_TIMEOUT_SECONDS", 10.0, low=0.1),
        notify_lease_seconds=_number(environ, "NOTIFY_LEASE_SECONDS", 30.0, low=1.0),
        notify_poll_seconds=_number(environ, "NOTIFY_POLL_SECONDS", 0.2, low=0.01, high=60.0),
        log_max_bytes=_int(environ, "LOG_MAX_BYTES", 10 * 1024 * 1024, low=0),
        log_backups=_int(environ, "LOG_BACKUPS", 5, low=0, high=1000),
        retention_days=_int(environ, "RETENTION_DAYS", 30, low=0),
        retention_interval_seconds=_number(environ, "RETENTION_INTERVAL_SECONDS", 3600.0, low=0.1),
        rollup_interval_seconds=_number(environ, "ROLLUP_INTERVAL_SECONDS", 10.0, low=0.1),
        workers=_int(environ, "BACKEND_WORKERS", 2, low=1, high=64),
        targets_file=_path(environ, "TARGETS_FILE", ROOT / "targets.yaml"),
        targets_file_required=bool(_text(environ, "TARGETS_FILE")),
        targets_poll_seconds=_number(environ, "TARGETS_POLL_SECONDS", 1.0, low=0.1),
        agent_refresh_seconds=_number(environ, "AGENT_REFRESH_SECONDS", 60.0, low=0.1),
        environment=dict(environ),
        notify_language=choice(environ, "NOTIFY_LANGUAGE", NOTIFY_LANGUAGES),
        email=load_email_settings(environ),
        metrics_token=_metrics_token(environ),
        dashboard=load_dashboard_settings(environ),
        status_page=_bool(environ, "STATUS_PAGE", False),
    )


def database_url(environ: Mapping[str, str]) -> str:
    """DATABASE_URL, or the SQLite file at the repository root (SPEC §2); checked without connecting."""
    raw = _text(environ, "DATABASE_URL")
    if not raw:
        return f"sqlite:///{ROOT / 'notifications.db'}"
    try:
        url = make_url(raw)
        dialect = url.get_dialect()
    except NoSuchModuleError:  # a subclass of ArgumentError: catch it first
        raise ConfigError("DATABASE_URL", f"unknown scheme {url.drivername + '://'!r}; use sqlite:/// or "
                                          "postgresql+psycopg://") from None
    except ArgumentError:
        raise ConfigError("DATABASE_URL", "is not a database URL; use sqlite:///path/to/file.db or "
                                          "postgresql+psycopg://user:password@host/name") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError("DATABASE_URL", f"{url.get_backend_name()} is not supported; use SQLite or PostgreSQL")
    try:
        dialect.import_dbapi()
    except ImportError:
        raise ConfigError("DATABASE_URL", f"its driver {url.get_driver_name()} is not installed; "
                                          "use postgresql+psycopg://") from None
    path = sqlite_file(url)
    if path is not None and not path.parent.is_dir():
        raise ConfigError("DATABASE_URL", f"folder {path.parent} does not exist; create it or choose another path")
    return raw


def sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL, a relative path resolved against the repository (SPEC §1); else None."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return repo_path(url.database)


def _apprise_urls(environ: Mapping[str, str]) -> tuple[str, ...]:
    """APPRISE_URLS split on commas and spaces, each one apprise can use; never quoted (they hold tokens)."""
    urls = tuple(part for part in re.split(r"[,\s]+", _text(environ, "APPRISE_URLS")) if part)
    if urls:
        bad = unusable_urls(urls)
        if bad:
            raise ConfigError("APPRISE_URLS", f"entry {bad[0]} of {len(urls)} is not a URL apprise can use "
                              "(see https://github.com/caronc/apprise/wiki)")
    return urls


def _metrics_token(environ: Mapping[str, str]) -> str | None:
    """METRICS_TOKEN: sent in an Authorization header, so printable ASCII without spaces; never quoted."""
    raw = _text(environ, "METRICS_TOKEN")
    if raw and not (raw.isascii() and raw.isprintable() and " " not in raw):
        raise ConfigError("METRICS_TOKEN", "must be printable ASCII without spaces (it is sent as a bearer token)")
    return raw or None


def _webhook_url(environ: Mapping[str, str]) -> str | None:
    """WEBHOOK_URL, checked, never quoted (its path may be the receiver's secret); signed, so it needs a secret."""
    both_or_neither(environ, "WEBHOOK_URL", "WEBHOOK_SECRET")  # SPEC §10: an unsigned webhook is refused
    raw = _text(environ, "WEBHOOK_URL")
    problem = http_url_problem(raw) if raw else None
    if problem:
        raise ConfigError("WEBHOOK_URL", f"must be an http(s) URL with a host; the value given {problem}")
    if _text(environ, "WEBHOOK_CA_FILE") and not raw:
        raise ConfigError("WEBHOOK_URL", "is required when WEBHOOK_CA_FILE is set")
    return raw or None


def _url(environ: Mapping[str, str], key: str, default: str) -> str:
    raw = _text(environ, key) or default
    problem = http_url_problem(raw)
    if problem:
        raise ConfigError(key, f"must be an http(s) URL with a host, {raw!r} {problem}")
    return raw


def _path(environ: Mapping[str, str], key: str, default: Path | None) -> Path | None:
    raw = _text(environ, key)
    return repo_path(raw) if raw else default
