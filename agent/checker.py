"""One check of one target URL: measure it and describe what happened; never send anything (SPEC §7)."""

from __future__ import annotations

import heapq
import logging
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from urllib.parse import urlsplit

import os

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

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
    # The idempotency key, made once per check: a retried send repeats it, so the backend can
    # store the event once however often it arrives.
    event_uid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_event(self) -> dict:
        """One element of the `POST /events` array for this result (SPEC §4), with its event_uid."""
        timestamp = self.timestamp.astimezone(timezone.utc).isoformat(timespec="milliseconds")
        return {
            "target_url": self.target_url,
            "timestamp": timestamp.replace("+00:00", "Z"),
            "is_success": self.is_success,
            "status_code": self.status_code,
            "response_time_ms": self.response_time_ms,
            "error_message": self.error_message,
            "event_uid": self.event_uid,
        }


class EnvOnceSession(requests.Session):
    """A requests.Session that reads its proxy and CA-bundle settings from the environment once.

    requests looks through the whole environment on every request (`get_environ_proxies`), and the
    agent's environment holds TARGET_URL, every target: with 1000 targets that was about 0.2 ms of
    CPU per check, growing with the list. Here the answer is kept per scheme and host; the
    environment of a running agent does not change.
    """

    MAX_CACHED_HOSTS = 4096

    def __init__(self):
        super().__init__()
        self._env_proxies: dict[tuple, dict] = {}
        self._env_ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        # What requests.Session does with trust_env, with the environment's answer cached.
        no_proxy = proxies.get("no_proxy") if proxies is not None else None
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, no_proxy)
        env_proxies = self._env_proxies.get(key)
        if env_proxies is None:
            if len(self._env_proxies) >= self.MAX_CACHED_HOSTS:
                self._env_proxies.clear()
            env_proxies = self._env_proxies[key] = get_environ_proxies(url, no_proxy=no_proxy)
        for k, v in env_proxies.items():
            proxies.setdefault(k, v)
        if verify is True or verify is None:
            verify = self._env_ca_bundle or verify
        return {"proxies": merge_setting(proxies, self.proxies), "stream": merge_setting(stream, self.stream),
                "verify": merge_setting(verify, self.verify), "cert": merge_setting(cert, self.cert)}


def new_session() -> requests.Session:
    """A session whose connections `check` can cut at its wall-clock deadline."""
    session = EnvOnceSession()
    adapter = _DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def check(session: requests.Session, url: str, timeout_seconds: float) -> CheckResult:
    """GET `url` once, following redirects, within `timeout_seconds` in all; never raises for the network.

    requests' timeout bounds each socket read, so a server that drips its headers one line at a
    time would never hit it; the deadline bounds the whole check (with a `new_session()` session).
    """
    timestamp = datetime.now(timezone.utc)
    started = time.perf_counter()
    status_code = response_time_ms = error_message = None
    timed_out = f"Request timed out after {round(timeout_seconds * 1000)}ms"
    deadline = _Deadline(timeout_seconds)
    try:
        # stream=True: the answer is in once the headers are; the body is not worth downloading.
        with deadline, session.get(url, timeout=timeout_seconds, stream=True) as response:
            response_time_ms = _elapsed_ms(started)
            status_code = response.status_code
            if status_code >= 400:
                error_message = f"HTTP {status_code} {_reason(response)}".rstrip()
    except requests.Timeout:  # before RequestException: ConnectTimeout is also a ConnectionError
        response_time_ms = _elapsed_ms(started)
        error_message = timed_out
    except (requests.RequestException, OSError, ValueError, urllib3.exceptions.HTTPError) as exc:
        if deadline.has_expired:  # whatever a cut connection raised mid-read, the deadline is why
            status_code, response_time_ms, error_message = None, _elapsed_ms(started), timed_out
        elif isinstance(exc, requests.RequestException):
            error_message = describe_error(exc, url)
        else:
            raise
    if deadline.has_expired and error_message != timed_out:
        # A cut read can also look like the end of the headers, and so like an answer: it is not one.
        status_code, response_time_ms, error_message = None, _elapsed_ms(started), timed_out
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


# The deadline of the check running on this thread, told about every connection it borrows.
_watched = threading.local()


class _Watchdog:
    """One daemon thread for every check's wall-clock deadline: a heap of (when, seq, deadline).

    A check registers its deadline on entry and marks it done on exit; a done deadline stays in
    the heap until its time comes and is then discarded (cheaper than removing it). The thread
    starts on first use and sleeps until the earliest deadline, or until an earlier one arrives.
    """

    def __init__(self):
        self._heap: list[tuple[float, int, "_Deadline"]] = []
        self._seq = 0
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def add(self, at: float, deadline: "_Deadline") -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (at, self._seq, deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="check-deadlines", daemon=True)
                self._thread.start()
            elif self._heap[0][2] is deadline:  # earlier than what the thread sleeps towards
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        overdue = []
                        while self._heap and self._heap[0][0] <= now:
                            overdue.append(heapq.heappop(self._heap)[2])
                        break
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            for deadline in overdue:  # outside the lock: a cut may take a moment
                try:
                    deadline.expire()
                except Exception:  # the watchdog must outlive any surprise
                    log.exception("cutting an overdue check failed")


_watchdog = _Watchdog()


class _Deadline:
    """Shut down the sockets of the running check when it outlasts `seconds` (a wall-clock bound)."""

    def __init__(self, seconds: float):
        self.has_expired = False
        self._seconds = seconds
        self._connections: list = []
        self._lock = threading.Lock()
        self._is_done = False

    def watch(self, connection) -> None:
        with self._lock:
            self._connections.append(connection)

    def __enter__(self) -> "_Deadline":
        _watched.deadline = self
        _watchdog.add(time.monotonic() + self._seconds, self)
        return self

    def __exit__(self, *exc_info) -> bool:
        with self._lock:
            self._is_done = True  # an expiry already under way must not cut a connection reused later
        _watched.deadline = None
        return False

    def expire(self) -> None:
        with self._lock:
            if self._is_done:
                return
            self.has_expired = True
            for connection in self._connections:
                sock = getattr(connection, "sock", None)
                if sock is None:
                    continue
                try:
                    # socket.socket's own shutdown, not SSLSocket's: the reading thread still owns
                    # the TLS state; cutting the descriptor makes its blocked read return at once.
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)
                except OSError:
                    pass


class _WatchedPoolMixin:
    def _get_conn(self, timeout=None):
        connection = super()._get_conn(timeout)  # type: ignore[misc]
        deadline = getattr(_watched, "deadline", None)
        if deadline is not None:
            deadline.watch(connection)
        return connection


class _WatchedHTTPPool(_WatchedPoolMixin, HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_WatchedPoolMixin, HTTPSConnectionPool):
    pass


class _DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose pools tell the running check's deadline about each connection they lend."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
