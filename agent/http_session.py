"""The sender's requests session, and a one-line reason for a failed request (the checks use libcurl)."""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

MAX_ERROR_CHARS = 300

# Phrases the resolver puts into socket.gaierror on Linux, macOS and Windows.
_DNS_PHRASES = ("name or service not known", "temporary failure in name resolution",
                "nodename nor servname", "getaddrinfo failed", "no address associated",
                "name resolution")


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
