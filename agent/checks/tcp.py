"""The `tcp` check kind: does `host:port` accept a connection within the timeout (SPEC §9)."""

from __future__ import annotations

import pycurl

from agent.checks.result import CheckResult
from agent.checks.curl_errors import describe_curl_error
from agent.checks.http import CurlContext, common_options
from agent.checks.transfer import Transfer


def prepare(handle: pycurl.Curl, transfer: Transfer, context: CurlContext) -> None:
    """Set `handle` up to connect to the spec's host and port, and stop there (CONNECT_ONLY)."""
    spec = transfer.spec
    host = f"[{spec.host}]" if spec.host and ":" in spec.host else spec.host
    # The scheme only picks libcurl's code path: with CONNECT_ONLY it sends nothing at all.
    handle.setopt(pycurl.URL, f"http://{host}:{spec.port}/")
    common_options(handle, spec, context)
    handle.setopt(pycurl.PROXY, "")  # a tcp check reaches the port itself, never through a proxy
    handle.setopt(pycurl.CONNECT_ONLY, 1)


def finish(transfer: Transfer, code: int, message: str) -> CheckResult:
    """Connected is a success (no status code); refused, unreachable or timed out is a failure."""
    spec, handle = transfer.spec, transfer.handle
    dns_ms, connect_ms = (_ms(handle.getinfo(pycurl.NAMELOOKUP_TIME_T)), _ms(handle.getinfo(pycurl.CONNECT_TIME_T)))
    if code == 0:
        elapsed_ms = round(handle.getinfo(pycurl.TOTAL_TIME_T) / 1000)
        return CheckResult(spec.target_url, transfer.timestamp, True, None, elapsed_ms, None,
                           dns_ms=dns_ms, connect_ms=connect_ms, target=spec.event_target)
    if code == pycurl.E_OPERATION_TIMEDOUT:
        elapsed_ms = round(handle.getinfo(pycurl.TOTAL_TIME_T) / 1000)
        return CheckResult(spec.target_url, transfer.timestamp, False, None, elapsed_ms,
                           f"Connection timed out after {round(spec.timeout_seconds * 1000)}ms", dns_ms=dns_ms,
                           target=spec.event_target)
    problem = describe_curl_error(code, message, handle.getinfo(pycurl.OS_ERRNO), spec.host)
    return CheckResult(spec.target_url, transfer.timestamp, False, None, None, problem, dns_ms=dns_ms,
                       target=spec.event_target)


def _ms(micros: int) -> float | None:
    return micros / 1000 if micros > 0 else None
