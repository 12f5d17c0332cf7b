"""A push target's secret ping token (SPEC §9): made, shown as a URL, and kept out of every log line."""

from __future__ import annotations

import re
import secrets

TOKEN_BYTES = 24  # 192 random bits, 32 URL-safe characters
MAX_TOKEN_LENGTH = 200  # longer than any token made here
_PING_PATH = re.compile(r"/ping/[^/\s?#\"']+")


def new_ping_token() -> str:
    """A fresh random token for a push target's /ping/<token> (at least 128 bits, SPEC §9)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def is_token_shaped(text: str) -> bool:
    """Whether `text` could be a ping token worth looking up: no NUL, at most MAX_TOKEN_LENGTH characters."""
    return len(text) <= MAX_TOKEN_LENGTH and "\x00" not in text


def ping_url(base_url: str, token: str) -> str:
    """The URL a cron job calls: the backend's own address as the request saw it, then /ping/<token>."""
    return f"{base_url.rstrip('/')}/ping/{token}"


def redact_ping_paths(text: str) -> str:
    """`text` with every /ping/<token> written /ping/<token> literally: a token never reaches a log line."""
    return _PING_PATH.sub("/ping/<token>", text) if "/ping/" in text else text
