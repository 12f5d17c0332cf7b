"""Webhook channel: the notice as signed JSON, POSTed to WEBHOOK_URL with requests (SPEC §10)."""

from __future__ import annotations

import ssl
import time
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import requests

from backend.messages import Notice
from backend.notifiers.base import DeliveryError, Notifier
from backend.notifiers.webhook_payload import encode, signed_headers, webhook_body
from backend.time_text import utc_text

USER_AGENT = "outage-backend-webhook/1"
REQUEST_ID_HEADERS = ("X-Request-Id", "Request-Id")  # a receiver's id for the request, if any (any case)
MAX_REASON_CHARS = 200  # of the receiver's answer, kept in a FAILED row


class WebhookNotifier(Notifier):
    """One signed POST per attempt, through one Session; redirects are not followed."""

    channel = "WEBHOOK"

    def __init__(self, url: str, secret: str, timeout_seconds: float, ca_file: Path | None = None,
                 clock: Callable[[], float] = time.time):
        self._url = url
        self._secret = secret
        # Where it goes, for reasons: host and port only, as a hook's path or query may be a secret.
        self.where = urlsplit(url).netloc.rpartition("@")[2]
        self.timeout_seconds = timeout_seconds
        self.clock = clock
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.verify: str | bool = str(ca_file) if ca_file else True

    def __repr__(self) -> str:  # never show the secret or the URL's path
        return f"WebhookNotifier(where={self.where!r})"

    def send(self, notice: Notice) -> str | None:
        """POST the notice once; return the receiver's request id header, if any; else raise DeliveryError."""
        now = self.clock()
        sent_at = utc_text(datetime.fromtimestamp(now, timezone.utc))
        body = encode(webhook_body(notice, sent_at))
        headers = signed_headers(self._secret, int(now), body)
        try:
            response = self.session.post(self._url, data=body, headers=headers, timeout=self.timeout_seconds,
                                         allow_redirects=False, stream=True,
                                         # Per request: a Session's own `verify` loses to REQUESTS_CA_BUNDLE.
                                         verify=self.verify)
        except requests.Timeout:
            raise DeliveryError(f"webhook {self.where} did not answer within {self.timeout_seconds:g}s") from None
        except requests.RequestException as exc:
            raise DeliveryError(f"webhook {self.where} could not be reached: {_cause(exc)}") from None
        with response:
            if 200 <= response.status_code < 300:
                return next((response.headers[h] for h in REQUEST_ID_HEADERS if response.headers.get(h)), None)
            raise DeliveryError(_refusal(self.where, response), response.status_code, _retry_after(response, now))


def _refusal(where: str, response: requests.Response) -> str:
    """One line: the status, its phrase, and the start of what the receiver said."""
    status = response.status_code
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    reason = f"webhook {where} answered {status} {phrase}".rstrip()
    if 300 <= status < 400:
        return f"{reason}; redirects are not followed: set WEBHOOK_URL to the final address"
    try:
        said = response.raw.read(MAX_REASON_CHARS, decode_content=True) or b""
    except (requests.RequestException, OSError, ValueError):
        said = b""
    said_text = " ".join(said.decode("utf-8", "replace").split())
    return f"{reason}: {said_text}" if said_text else reason


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Retry-After as seconds from `now`: a number of seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def _retry_after(response: requests.Response, now: float) -> float | None:
    # Only a 429 or 503 asks for a pause; elsewhere the header means nothing to us.
    if response.status_code not in (429, 503):
        return None
    return retry_after_seconds(response.headers.get("Retry-After"), now)


def _cause(exc: BaseException) -> str:
    """The innermost reason a request failed (`Connection refused`), never the URL that requests quotes."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted ({seen.verify_message})"
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed ({seen.reason or seen.__class__.__name__})"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return exc.__class__.__name__
