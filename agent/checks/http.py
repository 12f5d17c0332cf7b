"""The `http` check kind: one request with libcurl, judged by the target's conditions (SPEC §7, §9)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import urlsplit

import pycurl

from agent.checks.result import CheckResult
from agent.checks.spec import CheckSpec
from agent.checks import conditions
from agent.checks.curl_errors import describe_curl_error
from agent.checks.tls import CaBundles, expiry_from_certinfo
from agent.checks.transfer import Transfer

# CURLOPT_SUPPRESS_CONNECT_HEADERS (libcurl 7.54), which pycurl 7.49 has no name for: without it the
# proxy's "200 Connection established" reaches the header callback as if it were the site's answer.
SUPPRESS_CONNECT_HEADERS = 265
MAX_REDIRECTS = 30  # what requests allowed, so a redirect chain passes or fails as before
USER_AGENT = f"outage-agent {pycurl.version.split()[0]}"


@dataclass
class CurlContext:
    """What every handle shares: the CA bundles, the environment's proxies, extra options (tests: a resolver)."""

    ca_bundles: CaBundles
    proxies: Mapping[str, str] = field(default_factory=dict)  # urllib.request.getproxies() shape
    extra_options: Mapping[int, Any] = field(default_factory=dict)  # set last, over the kind's own

    def proxy_for(self, url: str) -> str:
        """The proxy for `url`'s scheme, or "" (no proxy: libcurl then ignores its own env lookup)."""
        scheme = url.split(":", 1)[0].lower()
        return self.proxies.get(scheme) or self.proxies.get("all") or ""


def prepare(handle: pycurl.Curl, transfer: Transfer, context: CurlContext) -> None:
    """Set `handle` up for one check of `transfer.spec` (an http spec); ValueError for an unusable setting."""
    spec = transfer.spec
    url = spec.url or ""
    handle.setopt(pycurl.URL, url)
    common_options(handle, spec, context)
    handle.setopt(pycurl.PROXY, context.proxy_for(url))
    handle.setopt(SUPPRESS_CONNECT_HEADERS, 1)
    handle.setopt(pycurl.FOLLOWLOCATION, 1)
    handle.setopt(pycurl.MAXREDIRS, MAX_REDIRECTS)
    handle.setopt(pycurl.REDIR_PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
    handle.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
    # Set for http URLs too: a redirect may lead to https.
    transfer.cainfo = context.ca_bundles.cainfo(spec.ca_file)
    handle.setopt(pycurl.CAINFO, transfer.cainfo)
    if not spec.tls_verify:
        handle.setopt(pycurl.SSL_VERIFYPEER, 0)
        handle.setopt(pycurl.SSL_VERIFYHOST, 0)
    handle.setopt(pycurl.OPT_CERTINFO, 1)
    header_lines = [f"{name}: {value}" for name, value in spec.headers]
    if _method_and_body(handle, spec):
        header_lines.append("Expect:")  # no 100-continue round trip before the body
    if header_lines:
        handle.setopt(pycurl.HTTPHEADER, header_lines)
    if spec.needs_body:
        handle.setopt(pycurl.ACCEPT_ENCODING, "")  # decoded by libcurl; the 1 MiB cap counts decoded bytes
    else:
        transfer.stop_at_headers = spec.method != "HEAD"
    handle.setopt(pycurl.HEADERFUNCTION, transfer.on_header)
    handle.setopt(pycurl.WRITEFUNCTION, transfer.on_body)


def finish(transfer: Transfer, code: int, message: str) -> CheckResult:
    """The result of a transfer libcurl ended with `code` (0: done), judged by the spec's conditions."""
    spec, handle = transfer.spec, transfer.handle
    timings = phase_times(handle)
    expires = expiry_from_certinfo(handle.getinfo(pycurl.INFO_CERTINFO))  # https, when the handshake got that far
    status = handle.getinfo(pycurl.RESPONSE_CODE) or None
    if code == 0 or (code == pycurl.E_WRITE_ERROR and transfer.stopped):
        elapsed_ms = round(handle.getinfo(pycurl.TOTAL_TIME_T) / 1000)
        problem = judge(spec, status, transfer.reason(), b"".join(transfer.body))
        return CheckResult(spec.target_url, transfer.timestamp, problem is None, status, elapsed_ms, problem,
                           cert_expires_at=expires, target=spec.event_target, **timings)
    if code == pycurl.E_OPERATION_TIMEDOUT:
        elapsed_ms = round(handle.getinfo(pycurl.TOTAL_TIME_T) / 1000)
        return CheckResult(spec.target_url, transfer.timestamp, False, None, elapsed_ms,
                           f"Request timed out after {round(spec.timeout_seconds * 1000)}ms",
                           cert_expires_at=expires, target=spec.event_target, **timings)
    host = urlsplit(handle.getinfo(pycurl.EFFECTIVE_URL) or spec.url or "").hostname
    problem = describe_curl_error(code, message, handle.getinfo(pycurl.OS_ERRNO), host)
    return CheckResult(spec.target_url, transfer.timestamp, False, None, None, problem,
                       cert_expires_at=expires, target=spec.event_target, **timings)


def judge(spec: CheckSpec, status: int | None, reason: str, body: bytes) -> str | None:
    """Why an answer fails the spec's conditions (status first, then body, regex, JSON), or None (SPEC §9)."""
    if status is None:
        return "Request failed: no HTTP status in the answer"
    problem = conditions.status_problem(status, reason, spec.expect_status)
    if problem is None and spec.body_contains is not None:
        problem = conditions.body_contains_problem(body, spec.body_contains)
    if problem is None and spec.body_regex is not None:
        problem = conditions.body_regex_problem(body, spec.body_regex)
    if problem is None and spec.json_path is not None:
        problem = conditions.json_problem(body, spec.json_path, spec.json_equals)
    return problem


def phase_times(handle: pycurl.Curl) -> dict:
    """DNS, connect, TLS and first-byte times in ms from the start of the last request; None when not reached."""
    times = {}
    for key, info in (("dns_ms", pycurl.NAMELOOKUP_TIME_T), ("connect_ms", pycurl.CONNECT_TIME_T),
                      ("tls_ms", pycurl.APPCONNECT_TIME_T), ("first_byte_ms", pycurl.STARTTRANSFER_TIME_T)):
        micros = handle.getinfo(info)
        times[key] = micros / 1000 if micros > 0 else None
    return times


def common_options(handle: pycurl.Curl, spec: CheckSpec, context: CurlContext) -> None:
    """The options every kind sets: the deadline, a fresh connection, no signals, the proxy exceptions."""
    timeout_ms = max(1, round(spec.timeout_seconds * 1000))
    handle.setopt(pycurl.NOSIGNAL, 1)
    handle.setopt(pycurl.TIMEOUT_MS, timeout_ms)  # one deadline over the whole transfer, proxies included
    handle.setopt(pycurl.CONNECTTIMEOUT_MS, timeout_ms)
    # A new connection per check: each one measures DNS, connect and TLS, and sees a new certificate.
    handle.setopt(pycurl.FORBID_REUSE, 1)
    handle.setopt(pycurl.USERAGENT, USER_AGENT)
    # Always set: unset, libcurl would read no_proxy from the process environment, not from `environ`.
    handle.setopt(pycurl.NOPROXY, context.proxies.get("no") or "")


def _method_and_body(handle: pycurl.Curl, spec: CheckSpec) -> bool:
    """Set the method, and the request body when there is one; True when there is."""
    method = spec.method
    if method == "HEAD":
        handle.setopt(pycurl.NOBODY, 1)
        return False
    if spec.body is not None or method in ("POST", "PUT", "PATCH"):
        handle.setopt(pycurl.COPYPOSTFIELDS, (spec.body or "").encode())
        if method != "POST":
            handle.setopt(pycurl.CUSTOMREQUEST, method)
        return True
    if method != "GET":
        handle.setopt(pycurl.CUSTOMREQUEST, method)
    return False
