"""One helper that takes a channel's secrets out of any text (SPEC §10): library errors often quote URLs."""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import unquote, urlsplit

MASK = "<redacted>"
MIN_PART_CHARS = 6  # shorter URL parts (ports, `hook`, `api`) say where, not who: they may stay
_URL_PARTS = re.compile(r"[/:@?&=#,;+]+")


def url_secrets(url: str) -> list[str]:
    """What of a channel URL may be secret: the URL itself, and each longer part after its scheme."""
    scheme, _, rest = url.partition("://")
    parts = [part for part in _URL_PARTS.split(rest) if len(part) >= MIN_PART_CHARS]
    return [url, rest, *parts, *(unquote(part) for part in parts)]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (longest first, so a URL goes before its parts) replaced by <redacted>."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def where(url: str) -> str:
    """A channel URL as messages may show it: its scheme alone (`json`, `slack`)."""
    return urlsplit(url).scheme or "?"
