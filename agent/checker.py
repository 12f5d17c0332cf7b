"""One check of one target URL: measure it and describe what happened; never send anything (SPEC §7)."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 300

# Phrases the resolver puts into socket.gaierror on Linux, macOS and Windows.
_DNS_PHRASES = ("name or service not known", "temporary failure in name resolution",
                "nodename nor servname", "getaddrinfo failed", "no address associated",
                "name resolution")


@dataclass(frozen=True)
class CheckResult:
    target_url: str
    timestamp: datetime  # aware UTC, when the check started
    is_success: bool
    status_code: int | None
    response_time_ms: int | None
    error_message: str | None

    def to_event(self) -> dict:
        """The body of `POST /events` for this result (SPEC §4)."""
        timestamp = self.timestamp.astimezone(timezone.utc).isoformat(timespec="milliseconds")
        return {
            "target_url": self.target_url,
            "timestamp": timestamp.replace("+00:00", "Z"),
            "is_success": self.is_success,
            "status_code": self.status_code,
            "response_time_ms": self.response_time_ms,
            "error_message": self.error_message,
        }


def check(session: requests.Session, url: str, timeout_seconds: float) -> CheckResult:
    """GET `url` once, following redirects, and return what happened; network problems never raise."""
    timestamp = datetime.now(timezone.utc)
    started = time.perf_counter()
    status_code = response_time_ms = error_message = None
    try:
        # stream=True: the answer is in once the headers are; the body is not worth downloading.
        with session.get(url, timeout=timeout_seconds, stream=True) as response:
            response_time_ms = _elapsed_ms(started)
            status_code = response.status_code
            if status_code >= 400:
                error_message = f"HTTP {status_code} {_reason(response)}".rstrip()
    except requests.Timeout:  # before RequestException: ConnectTimeout is also a ConnectionError
        response_time_ms = _elapsed_ms(started)
        error_message = f"Request timed out after {round(timeout_seconds * 1000)}ms"
    except requests.RequestException as exc:
        error_message = describe_error(exc, url)
    result = CheckResult(url, timestamp, error_message is None, status_code, response_time_ms,
                         error_message)
    _log_result(result)
    return result


def describe_error(exc: requests.RequestException, url: str) -> str:
    """A short one-line reason for a failed request, without urllib3's object reprs."""
    causes = _causes(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return _clip(f"TLS error: {_innermost_text(causes)}")
    if isinstance(exc, requests.TooManyRedirects):
        return "Too many redirects"
    if isinstance(exc, requests.ConnectionError):
        text = " ".join(str(c) for c in causes).lower()
        if any(isinstance(c, urllib3.exceptions.NameResolutionError) for c in causes) or any(
                phrase in text for phrase in _DNS_PHRASES):
            return _clip(f"DNS lookup failed for {urlsplit(url).hostname}")
        if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text:
            return "Connection failed: connection refused"
        if any(isinstance(c, ConnectionResetError) for c in causes):
            return "Connection failed: connection reset by peer"
        if "remotedisconnected" in text or "without response" in text:
            return "Connection failed: the server closed the connection without a response"
        return _clip(f"Connection failed: {_innermost_text(causes)}")
    return _clip(f"Request failed: {type(exc).__name__}: {_innermost_text(causes)}")


def _causes(exc: BaseException) -> list[BaseException]:
    """`exc` and every exception it wraps (args, urllib3's .reason, __cause__, __context__)."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending and len(seen) < 20:
        current = pending.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        pending.extend(a for a in current.args if isinstance(a, BaseException))
        for inner in (getattr(current, "reason", None), current.__cause__, current.__context__):
            if isinstance(inner, BaseException):
                pending.append(inner)
    return seen


def _innermost_text(causes: list[BaseException]) -> str:
    for cause in reversed(causes):
        text = _clean(str(cause))
        if text:
            return text
    return type(causes[0]).__name__


def _clean(text: str) -> str:
    text = re.sub(r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*", "", text)
    return " ".join(text.split())


def _clip(text: str) -> str:
    text = _clean(text)
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 3] + "..."


def _reason(response: requests.Response) -> str:
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return _clip(response.reason or "")


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _log_result(result: CheckResult) -> None:
    if result.is_success:
        log.info("check %s -> %s in %sms", result.target_url, result.status_code,
                 result.response_time_ms)
    elif result.status_code is not None:
        log.warning("check %s -> failed: %s in %sms", result.target_url, result.error_message,
                    result.response_time_ms)
    else:
        log.warning("check %s -> failed: %s", result.target_url, result.error_message)
