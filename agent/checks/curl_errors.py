"""libcurl's error codes as the short reasons the agent has always sent (SPEC §7)."""

from __future__ import annotations

import errno
import re

import pycurl

from agent.checks.conditions import clip

_TLS_CODES = frozenset(getattr(pycurl, name) for name in (
    "E_SSL_CONNECT_ERROR", "E_PEER_FAILED_VERIFICATION", "E_SSL_CERTPROBLEM", "E_SSL_CIPHER",
    "E_SSL_CACERT_BADFILE", "E_SSL_ISSUER_ERROR", "E_SSL_PINNEDPUBKEYNOTMATCH",
    "E_SSL_INVALIDCERTSTATUS", "E_SSL_ENGINE_NOTFOUND", "E_SSL_ENGINE_SETFAILED") if hasattr(pycurl, name))
_VERIFY_RESULT = re.compile(r"(?:verify result: |certificate problem: )(.*?)(?: \(\d+\))?$")


def describe_curl_error(code: int, message: str, os_errno: int, host: str | None) -> str:
    """A one-line reason for a transfer libcurl ended with `code` (not a timeout: the caller words that)."""
    if code == pycurl.E_COULDNT_RESOLVE_HOST:
        return clip(f"DNS lookup failed for {host}")
    if code == pycurl.E_TOO_MANY_REDIRECTS:
        return "Too many redirects"
    if code == pycurl.E_PEER_FAILED_VERIFICATION:
        match = _VERIFY_RESULT.search(message)
        return clip(f"TLS error: certificate verify failed: {match.group(1) if match else message}")
    if code in _TLS_CODES:
        return clip(f"TLS error: {message}")
    if os_errno == errno.ECONNREFUSED:
        return "Connection failed: connection refused"
    if os_errno == errno.ECONNRESET:
        return "Connection failed: connection reset by peer"
    if code == pycurl.E_GOT_NOTHING:
        return "Connection failed: the server closed the connection without a response"
    if code in (pycurl.E_COULDNT_CONNECT, pycurl.E_COULDNT_RESOLVE_PROXY, pycurl.E_SEND_ERROR,
                pycurl.E_RECV_ERROR):
        return clip(f"Connection failed: {message}")
    return clip(f"Request failed: {message or f'libcurl error {code}'}")
