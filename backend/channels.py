"""Named channels (SPEC §10): the targets file's `channels:` entries as models, and each one's notifier.

Pure but for building notifiers: `check_channels` validates the file's entries (secrets written as
`${NAME}` are resolved only to check them, never kept), `named_notifiers` builds a process's
notifiers from the stored entries, and `channel_exists` says whether a target may name a channel.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path
from typing import Annotated, Any, Collection, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.apprise_urls import unusable_urls
from backend.config import ConfigError, Settings
from backend.email_settings import load_email_settings
from backend.env_references import resolve_secrets
from backend.messages import Notice
from backend.notifiers.base import DeliveryError, Notifier
from backend.notifiers.redact import redact, url_secrets
from backend.target_models import DEFAULT_CHANNELS
from backend.validation import is_valid_url

log = logging.getLogger(__name__)

CHANNEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # fits deliveries.channel (32) and needs no quoting
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")
Text = Annotated[str, Field(min_length=1)]


class _Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ConsoleChannel(_Channel):
    type: Literal["console"]


class EmailChannel(_Channel):
    type: Literal["email"]
    to: Annotated[list[str], Field(min_length=1)]

    @field_validator("to")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        if not all(_ADDRESS.fullmatch(address) for address in value):
            raise ValueError("must list email addresses like ops@example.com")
        return value


class WebhookChannel(_Channel):
    type: Literal["webhook"]
    url: Text
    secret: Text  # SPEC §10: an unsigned webhook is refused
    ca_file: str | None = None


class AppriseChannel(_Channel):
    type: Literal["apprise"]
    urls: Annotated[list[Text], Field(min_length=1)]


class TelegramChannel(_Channel):
    type: Literal["telegram"]
    chat_id: str | int


MODELS = {"console": ConsoleChannel, "email": EmailChannel, "webhook": WebhookChannel, "apprise": AppriseChannel,
          "telegram": TelegramChannel}
# Where a channel keeps its secrets: never shown by GET /channels, redacted from every reason.
SECRET_KEYS = {"webhook": ("url", "secret"), "apprise": ("urls",), "telegram": (), "email": (), "console": ()}


def channel_exists(name: str, named: Collection[str]) -> bool:
    """Whether a target (or an escalation) may name `name`: a default channel or one of the file's `named`."""
    return name in DEFAULT_CHANNELS or name in named


def delivery_channel(name: str) -> str:
    """deliveries.channel (and notification_logs.channel) for a channel a target names: `TELEGRAM`, `pager`."""
    return name.upper() if name in DEFAULT_CHANNELS else name


def routed(configured: list[str], names: Collection[str] | None) -> list[str]:
    """The configured channels a notice goes to: those `names` (a target's `channels:`, lower case) lists, or all
    when it lists none (SPEC §8); defaults are stored upper case (EMAIL), named channels as named (pager)."""
    if names is None:
        return configured
    return [channel for channel in configured if channel.lower() in names]


def name_problem(name: Any) -> str | None:
    """Why `name` cannot name a channel, or None."""
    if not isinstance(name, str) or not CHANNEL_NAME.fullmatch(name):
        return "must be a channel name of lowercase letters, digits, - and _ (at most 32 characters)"
    if name in DEFAULT_CHANNELS:
        return f"is a default channel's name ({', '.join(DEFAULT_CHANNELS)}); pick another"
    return None


def resolved_problem(kind: str, spec: Mapping[str, Any], environ: Mapping[str, str]) -> tuple[str, str] | None:
    """A (key, problem) the resolved entry has that its model cannot see, or None; never quotes a value."""
    if kind == "webhook":
        if not is_valid_url(spec["url"], schemes=("http", "https")):
            return "url", "must be an http(s) URL"
        if spec.get("ca_file") is not None and not spec["ca_file"].startswith("/"):
            return "ca_file", "must be an absolute path"
    if kind == "apprise":
        bad = unusable_urls(spec["urls"])
        if bad:
            return "urls", f"entry {bad[0]} is not a URL apprise can use (see https://github.com/caronc/apprise/wiki)"
    if kind == "email" and not environ.get("SMTP_HOST", "").strip():
        return "type", "email channels send through SMTP_HOST (and SMTP_PORT, SMTP_USER, …): set it for the backend"
    if kind == "telegram" and not environ.get("TELEGRAM_BOT_TOKEN", "").strip():
        return "type", "telegram channels send with TELEGRAM_BOT_TOKEN: set it for the backend"
    return None


def public_channel(name: str, spec: Mapping[str, Any]) -> dict:
    """A channel as GET /channels shows it: its name, type and non-secret keys, secrets as `<redacted>`."""
    shown = {"name": name, "type": spec["type"]}
    for key, value in spec.items():
        if key != "type":
            shown[key] = "<redacted>" if key in SECRET_KEYS[spec["type"]] else value
    return shown


class NamedChannel(Notifier):
    """A channel of the targets file: another notifier under the channel's name, its secrets kept out of reasons."""

    def __init__(self, name: str, kind: str, inner: Notifier, secrets: list[str]):
        self.channel = name  # stored in notification_logs.channel and deliveries.channel
        self.kind = kind
        self.inner = inner
        self._secrets = secrets

    def __repr__(self) -> str:
        return f"NamedChannel({self.channel!r}, {self.kind!r})"

    def send(self, notice: Notice) -> str | None:
        """One attempt through the inner notifier; its reason redacted of this channel's secrets."""
        try:
            return self.inner.send(notice)
        except DeliveryError as exc:
            raise DeliveryError(redact(exc.reason, self._secrets), exc.response_code,
                                exc.retry_after_seconds) from None
        except Exception as exc:  # a library's message may quote a URL: the class name only
            log.error("%s (%s) raised %s", self.channel, self.kind, exc.__class__.__name__)
            raise DeliveryError(f"unexpected error: {exc.__class__.__name__}") from None


def build_notifier(name: str, spec: Mapping[str, Any], settings: Settings) -> NamedChannel:
    """The notifier for one stored (resolved) channel entry, with this backend's settings."""
    # Here, not at the top: the targets file's validation imports this module, and needs no channel library.
    from backend.notifiers import (AppriseNotifier, ConsoleNotifier, EmailNotifier, TelegramNotifier,
                                   WebhookNotifier)
    kind, timeout, language = spec["type"], settings.notify_timeout_seconds, settings.notify_language
    secrets: list[str] = []
    if kind == "console":
        inner: Notifier = ConsoleNotifier(settings.log_file)
    elif kind == "email":
        to = tuple(spec["to"])
        server = load_email_settings({**settings.environment, "SMTP_TO": ",".join(to)})
        inner = EmailNotifier(dataclasses.replace(server, to=to), timeout, language)
        secrets = [server.password or ""]
    elif kind == "webhook":
        ca = Path(spec["ca_file"]) if spec.get("ca_file") else None
        inner = WebhookNotifier(spec["url"], spec["secret"], timeout, ca)
        secrets = [*url_secrets(spec["url"]), spec["secret"]]
    elif kind == "apprise":
        inner = AppriseNotifier(spec["urls"], timeout, language)
        secrets = [secret for url in spec["urls"] for secret in url_secrets(url)]
    else:
        token = settings.telegram_bot_token or ""
        inner = TelegramNotifier(token, str(spec["chat_id"]), settings.telegram_api_base_url, timeout, language)
        secrets = [token]
    return NamedChannel(name, kind, inner, secrets)


def named_notifiers(channels: Mapping[str, Mapping[str, Any]], settings: Settings) -> dict[str, Notifier]:
    """This process's notifier for each stored channel entry, `${NAME}` resolved; one it cannot build is skipped."""
    built = {}
    for name, spec in channels.items():
        try:
            built[name] = build_notifier(name, resolve_secrets(dict(spec), settings.environment), settings)
        except (KeyError, ConfigError, ValueError, OSError) as exc:  # loaded by a process with another environment
            problem = f"${{{exc.args[0]}}} is not set" if isinstance(exc, KeyError) else exc.__class__.__name__
            log.error("channel %s cannot be used in this backend process (%s); its notices wait", name, problem)
    return built
