"""The email channel's one-line settings, SMTP_* (SPEC §10): read, checked and typed once, at start."""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Mapping

from common.config import ConfigError, both_or_neither, ca_file
from common.config import boolean as _bool
from common.config import text as _text
from common.config import whole_number as _int

# Every SMTP_* key but the two that turn the channel on: setting one of them alone is a mistake.
_DEPENDENT_KEYS = ("SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD", "SMTP_FROM", "SMTP_STARTTLS", "SMTP_TLS", "SMTP_CA_FILE")
# A plain check, not RFC 5322: one @, something on each side, no spaces; the server has the last word.
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


@dataclass(frozen=True)
class EmailSettings:
    host: str
    port: int
    to: tuple[str, ...]
    sender: str                       # SMTP_FROM, as the From header shows it
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True             # upgrade a plain connection (port 587)
    tls: bool = False                 # TLS from the first byte (port 465)
    ca_file: Path | None = None       # trust this CA instead of the system's (a private server)


def load_email_settings(environ: Mapping[str, str]) -> EmailSettings | None:
    """EmailSettings when SMTP_HOST and SMTP_TO are set, None when no SMTP_* key is, else ConfigError (SPEC §10)."""
    host, to = _text(environ, "SMTP_HOST"), _text(environ, "SMTP_TO")
    if not host and not to:
        for key in _DEPENDENT_KEYS:
            if _text(environ, key):
                raise ConfigError("SMTP_HOST", f"is required when {key} is set (with SMTP_TO, it turns email on)")
        return None
    both_or_neither(environ, "SMTP_HOST", "SMTP_TO")
    both_or_neither(environ, "SMTP_USER", "SMTP_PASSWORD")
    if "://" in host or re.search(r"[\s/]", host):
        raise ConfigError("SMTP_HOST", f"must be a host name like smtp.example.com, got {host!r}")
    tls = _bool(environ, "SMTP_TLS", False)
    port = _int(environ, "SMTP_PORT", 465 if tls else 587, low=1, high=65535)
    starttls = _bool(environ, "SMTP_STARTTLS", port == 587 and not tls)
    if tls and starttls:
        raise ConfigError("SMTP_STARTTLS", "cannot be true with SMTP_TLS=true (TLS is already on from the start)")
    user = _text(environ, "SMTP_USER") or None
    if user and not (tls or starttls):
        raise ConfigError("SMTP_PASSWORD", "would travel unencrypted: set SMTP_STARTTLS=true or SMTP_TLS=true")
    recipients = tuple(_address(environ, "SMTP_TO", part.strip()) for part in to.split(",") if part.strip())
    if not recipients:
        raise ConfigError("SMTP_TO", "must name at least one address, e.g. ops@example.com")
    raw_from = _text(environ, "SMTP_FROM") or default_sender(user)
    return EmailSettings(host=host, port=port, to=recipients, sender=_address(environ, "SMTP_FROM", raw_from),
                         user=user, password=_text(environ, "SMTP_PASSWORD") or None, starttls=starttls, tls=tls,
                         ca_file=ca_file(environ, "SMTP_CA_FILE"))


def default_sender(user: str | None) -> str:
    """SMTP_USER when it is an address (a mailbox login, as at Gmail or Fastmail), else outage-alerts@<host name>."""
    if user and _ADDRESS.fullmatch(user):
        return user
    return f"outage-alerts@{socket.gethostname() or 'localhost'}"


def _address(environ: Mapping[str, str], key: str, raw: str) -> str:
    """`raw` when it is one address (`ops@example.com` or `Ops <ops@example.com>`), else ConfigError naming `key`."""
    _, address = parseaddr(raw)
    if "\n" in raw or "\r" in raw or not _ADDRESS.fullmatch(address):
        raise ConfigError(key, f"{raw!r} is not an email address like ops@example.com")
    return raw
