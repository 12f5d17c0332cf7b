"""Hostile targets on real local servers: each check on the libcurl engine ends promptly with a clear reason (SPEC §7)."""

from __future__ import annotations

import re
import ssl
import subprocess
import time
from http.server import BaseHTTPRequestHandler

import pytest

from tests.support.checks import Checker, checker  # noqa: F401  (a fixture)
from tests.support.doh import NxdomainResolver
from tests.support.procs import base_env, start, stop, wait_until
from tests.support.servers import LoopbackServer
from tests.support.fake_backend import FakeBackend
from tests.support.tls import issue


class _HostileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        server: HostileServer = self.server  # type: ignore[assignment]
        server.hits += 1
        try:
            getattr(self, f"_{server.kind}")(server)
        except OSError:
            pass  # the client hung up, which is what a good client does here

    def _huge(self, server):
        """Promise 1 GB and stream it as fast as the client reads."""
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 30))
        self.end_headers()
        chunk = b"x" * 65536
        for _ in range((1 << 30) // len(chunk)):
            if server.release.is_set():
                return
            self.wfile.write(chunk)
            server.bytes_sent += len(chunk)

    def _drip_body(self, server):
        """Headers at once, then one body byte every 0.2 s, forever."""
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 20))
        self.end_headers()
        while not server.release.wait(0.2):
            self.wfile.write(b"x")
            self.wfile.flush()

    def _drip_headers(self, server):
        """The status line, then one header line every 0.3 s, never ending the headers."""
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        self.wfile.flush()
        n = 0
        while not server.release.wait(0.3):
            n += 1
            self.wfile.write(f"X-Drip-{n}: {n}\r\n".encode())
            self.wfile.flush()

    def _ok(self, server):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _redirect_loop(self, server):
        self.send_response(302)
        self.send_header("Location", server.url)
        self.send_header("Content-Length", "0")
        self.end_headers()


class HostileServer(LoopbackServer):
    def __init__(self, kind: str, tls: ssl.SSLContext | None = None):
        super().__init__(_HostileHandler)
        self.kind = kind
        self.hits = 0
        self.bytes_sent = 0
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
            self.url = self.url.replace("http://", "https://")
        self.start()


@pytest.fixture
def hostile():
    """Start hostile servers with `hostile(kind)`; all are stopped afterwards."""
    servers: list[HostileServer] = []

    def make(kind: str, tls: ssl.SSLContext | None = None) -> HostileServer:
        servers.append(HostileServer(kind, tls))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """A server-side TLS context with a self-signed certificate made by the openssl CLI."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def timed_check(checker, url, timeout):
    began = time.monotonic()
    result = checker.check(url, timeout)
    return result, time.monotonic() - began


def test_a_huge_body_is_not_downloaded(hostile, checker):
    server = hostile("huge")
    result, took = timed_check(checker, server.url, 2)
    assert (result.is_success, result.status_code) == (True, 200)
    assert took < 2
    assert server.bytes_sent < 50 * (1 << 20)  # what socket buffers hold, far from 1 GB


def test_a_body_dripping_forever_does_not_hold_the_check(hostile, checker):
    server = hostile("drip_body")
    result, took = timed_check(checker, server.url, 2)
    assert (result.is_success, result.status_code) == (True, 200)
    assert took < 1.5


def test_headers_dripping_past_the_timeout_hit_the_wall_clock_deadline(hostile, checker):
    server = hostile("drip_headers")
    result, took = timed_check(checker, server.url, 1)
    assert result.is_success is False
    assert result.status_code is None
    assert result.error_message == "Request timed out after 1000ms"
    assert 0.9 <= took < 2.5
    assert 900 <= result.response_time_ms < 2500


def test_the_engine_still_works_after_a_deadline_cut_a_connection(hostile, checker):
    dripping, healthy = hostile("drip_headers"), hostile("ok")
    assert checker.check(dripping.url, 0.5).error_message == "Request timed out after 500ms"
    assert checker.check(healthy.url, 2).is_success is True
    assert checker.check(dripping.url, 0.5).error_message == "Request timed out after 500ms"


def test_a_hostile_target_delays_no_healthy_check_running_beside_it(hostile, checker):
    """One engine thread runs every check: a dripping target must not hold the healthy one."""
    from agent.checks.spec import spec_for_url
    dripping, healthy = hostile("drip_headers"), hostile("ok")
    began = time.monotonic()
    results = checker.check_all([spec_for_url(dripping.url, 30, 1.5), spec_for_url(healthy.url, 30, 1.5)])
    assert [r.target_url for r in results] == [healthy.url, dripping.url]  # the healthy one first
    assert results[0].is_success and results[0].response_time_ms < 1000
    assert results[1].error_message == "Request timed out after 1500ms"
    assert time.monotonic() - began < 3


def test_a_self_signed_certificate_is_a_tls_error(hostile, checker, self_signed):
    server = hostile("ok", tls=self_signed)
    result, took = timed_check(checker, server.url, 2)
    assert (result.is_success, result.status_code) == (False, None)
    assert result.error_message.startswith("TLS error: ")
    assert "certificate verify failed" in result.error_message
    assert took < 2


def test_a_redirect_loop_is_too_many_redirects(hostile, checker):
    result, took = timed_check(checker, hostile("redirect_loop").url, 2)
    assert (result.is_success, result.error_message) == (False, "Too many redirects")
    assert took < 2


def test_hostile_targets_never_stall_the_loop_for_a_healthy_one(hostile, self_signed, target, tmp_path):
    """The agent as a process, checking every kind of hostile target next to a healthy one."""
    kinds = ["drip_headers", "drip_body", "huge", "redirect_loop"]
    servers = {kind: hostile(kind) for kind in kinds}
    servers["tls"] = hostile("ok", tls=self_signed)
    backend = FakeBackend().start()
    urls = [target.url] + [s.url for s in servers.values()]
    env = base_env(tmp_path, TARGET_URL=",".join(urls), BACKEND_URL=backend.url,
                   AGENT_SPOOL_FILE=str(tmp_path / "spool.db"),
                   CHECK_INTERVAL_SECONDS="0.3", REQUEST_TIMEOUT_SECONDS="1")
    proc = start(["agent/agent.py"], env, tmp_path / "agent.out")
    log_path = tmp_path / "agent.log"
    try:
        # About three seconds of checks every 0.3 s: a stalled loop would fall far short.
        wait_until(lambda: target.hits >= 8, 20, message="eight checks of the healthy target")
        wait_until(lambda: "Request timed out after 1000ms" in log_path.read_text(), 10,
                   message="the header drip timing out")
        text = log_path.read_text()
        assert re.search(rf"check {re.escape(servers['tls'].url)} -> failed: TLS error: ", text)
        assert f"check {servers['redirect_loop'].url} -> failed: Too many redirects" in text
        assert re.search(rf"check {re.escape(servers['huge'].url)} -> 200 in \d+ms", text)
        assert re.search(rf"check {re.escape(servers['drip_body'].url)} -> 200 in \d+ms", text)
        wait_until(lambda: target.url in {e["target_url"] for e in backend.stored_events()}, 10,
                   message="the healthy target's events delivered")
        assert stop(proc, timeout=10) == 0
    finally:
        stop(proc)
        backend.stop()


def test_a_name_that_does_not_resolve_is_a_dns_failure(tmp_path):
    """A real DNS failure without a real DNS server: libcurl asks a DNS-over-HTTPS resolver on
    127.0.0.1 (CURLOPT_DOH_URL), which answers NXDOMAIN, and asks nothing else."""
    resolver = NxdomainResolver(issue(tmp_path, "resolver", days=1)).start()
    via_resolver = Checker(extra_options=resolver.curl_options)
    try:
        started = time.monotonic()
        result = via_resolver.check("http://no-such-host.invalid/", 1.0)
    finally:
        via_resolver.close()
        resolver.stop()
    assert time.monotonic() - started < 5
    assert resolver.questions >= 1  # the name was asked of our resolver, and so of no other
    assert (result.is_success, result.status_code, result.response_time_ms) == (False, None, None)
    assert result.error_message == "DNS lookup failed for no-such-host.invalid"
