"""Each check kind of SPEC §9 on the libcurl engine, against real local servers: TLS, JSON, keyword, tcp."""

from __future__ import annotations

import logging
import socket
import time
from datetime import timedelta
from pathlib import Path
from http.server import BaseHTTPRequestHandler

import pycurl
import pytest

from agent import engine as engine_module
from agent.checks.spec import CheckSpec
from agent.checks import http
from agent.checks.tls import CaBundles
from tests.support.checks import Checker, checker  # noqa: F401  (a fixture)
from tests.support.connect_proxy import ConnectProxy
from tests.support.procs import free_port
from tests.support.servers import LoopbackServer
from tests.support.tls import issue, serve_tls


class _Site(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self):
        server: Site = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        server.requests.append((self.command, dict(self.headers), self.rfile.read(length)))
        try:
            self.send_response(server.status)
            self.send_header("Content-Type", server.content_type)
            if server.location:
                self.send_header("Location", server.location)
            if server.repeat:  # a huge body: `body` once, then `repeat` bytes of filler
                self.send_header("Content-Length", str(len(server.body) + server.repeat))
                self.end_headers()
                self.wfile.write(server.body)
                chunk = b"." * 65536
                for _ in range(server.repeat // len(chunk)):
                    self.wfile.write(chunk)
                    server.bytes_sent += len(chunk)
            else:
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)
        except OSError:
            pass  # the check hung up once it had what it needed

    do_GET = do_POST = do_PUT = do_HEAD = _answer


class Site(LoopbackServer):
    """A site whose status and body a test changes mid-run; it records every request."""

    request_queue_size = 256  # room for every connection of many checks at once (socketserver's is 5)

    def __init__(self):
        super().__init__(_Site)
        self.status, self.body, self.content_type = 200, b"", "text/plain"
        self.repeat = self.bytes_sent = 0
        self.location = ""
        self.requests: list[tuple[str, dict, bytes]] = []


@pytest.fixture
def site():
    server = Site().start()
    yield server
    server.stop()


@pytest.fixture
def proxy():
    server = ConnectProxy().start()
    yield server
    server.stop()


@pytest.fixture
def tls_site(tmp_path):
    """An https site whose certificate, issued by a CA made here, expires in 3 days."""
    ca = issue(tmp_path, "ca", days=30, is_ca=True)
    leaf = issue(tmp_path, "site", days=3, issuer=ca)
    server = serve_tls(Site(), leaf).start()
    server.ca, server.leaf = ca, leaf
    server.body = b"ok"
    yield server
    server.stop()


# --- https and the certificate ----------------------------------------------------------------

def test_an_https_target_trusted_through_ca_file_carries_its_certificates_expiry(tls_site, checker):
    result = checker.check(CheckSpec("tls", url=tls_site.url, ca_file=str(tls_site.ca.cert)))
    assert (result.is_success, result.status_code, result.error_message) == (True, 200, None)
    assert result.cert_expires_at == tls_site.leaf.not_after
    assert timedelta(days=2, hours=23) < result.cert_expires_at - result.timestamp <= timedelta(days=3)
    assert result.tls_ms is not None and result.connect_ms is not None and result.tls_ms >= result.connect_ms


def test_without_its_ca_file_the_same_target_is_a_tls_error(tls_site, checker):
    result = checker.check(CheckSpec("tls", url=tls_site.url))
    assert (result.is_success, result.status_code) == (False, None)
    assert result.error_message.startswith("TLS error: certificate verify failed: ")


def test_tls_verify_false_accepts_the_certificate_and_still_reads_its_expiry(tls_site, checker):
    result = checker.check(CheckSpec("tls", url=tls_site.url, tls_verify=False))
    assert (result.is_success, result.status_code) == (True, 200)
    assert result.cert_expires_at == tls_site.leaf.not_after


def test_an_https_target_through_a_connect_proxy_gets_the_sites_answer(tls_site, proxy):
    checker = Checker({"https_proxy": proxy.url})
    try:
        result = checker.check(CheckSpec("tls", url=tls_site.url, ca_file=str(tls_site.ca.cert)))
    finally:
        checker.close()
    assert (result.is_success, result.status_code, result.error_message) == (True, 200, None)
    assert result.cert_expires_at == tls_site.leaf.not_after
    assert proxy.connects == [tls_site.url[len("https://"):].rstrip("/")]


def test_a_redirect_from_http_to_https_is_verified_too_and_carries_the_expiry(site, tls_site, checker):
    site.status, site.location = 301, tls_site.url
    result = checker.check(CheckSpec("moved", url=site.url, ca_file=str(tls_site.ca.cert)))
    assert (result.is_success, result.status_code) == (True, 200)
    assert result.cert_expires_at == tls_site.leaf.not_after
    unverified = checker.check(CheckSpec("moved", url=site.url))
    assert unverified.error_message.startswith("TLS error: certificate verify failed: ")


def test_a_changed_ca_file_leaves_one_combined_bundle_behind_not_one_per_version(tls_site, checker, tmp_path):
    ca_file = tmp_path / "trusted.pem"
    ca_file.write_bytes(tls_site.ca.cert.read_bytes())
    spec = CheckSpec("tls", url=tls_site.url, ca_file=str(ca_file))
    for version in range(3):
        ca_file.write_bytes(tls_site.ca.cert.read_bytes() + b"\n" * version)  # a new size: a new version
        assert checker.check(spec).is_success
    combined = checker.context.ca_bundles.cainfo(str(ca_file))
    assert sorted(p.name for p in Path(combined).parent.iterdir()) == [Path(combined).name]


def test_a_superseded_bundle_stays_while_a_check_still_holds_it(tmp_path):
    (tmp_path / "default.pem").write_bytes(b"default\n")
    ca_file = tmp_path / "extra.pem"
    ca_file.write_bytes(b"one\n")
    bundles = CaBundles(str(tmp_path / "default.pem"))
    try:
        held = bundles.cainfo(str(ca_file))
        ca_file.write_bytes(b"two, longer\n")
        newer = bundles.cainfo(str(ca_file))
        assert newer != held and Path(held).read_bytes() == b"default\n\none\n\n"  # its check may yet read it
        bundles.release(held)
        assert not Path(held).exists() and Path(newer).read_bytes() == b"default\n\ntwo, longer\n\n"
    finally:
        bundles.close()


def test_an_unreadable_ca_file_fails_the_check_and_says_why(tls_site, checker, tmp_path):
    result = checker.check(CheckSpec("tls", url=tls_site.url, ca_file=str(tmp_path / "missing.pem")))
    assert result.is_success is False
    assert result.error_message == f"Request failed: ca_file {tmp_path / 'missing.pem'} cannot be read: No such file or directory"


# --- keyword and JSON conditions --------------------------------------------------------------

def test_a_json_field_that_flips_fails_the_check_and_says_which_field(site, checker):
    spec = CheckSpec("api", url=site.url, json_path="$.status", json_equals="up")
    site.content_type = "application/json"
    site.body = b'{"status": "up", "version": 3}'
    assert checker.check(spec).is_success is True
    site.body = b'{"status": "degraded", "version": 3}'
    down = checker.check(spec)
    assert (down.is_success, down.status_code) == (False, 200)
    assert down.error_message == '$.status is "degraded", expected "up"'
    site.body = b'{"status": "up", "version": 3}'
    assert checker.check(spec).is_success is True


def test_keyword_checks_read_the_body(site, checker):
    site.body = b"<html>all systems operational</html>"
    assert checker.check(CheckSpec("k", url=site.url, body_contains="operational")).is_success is True
    missing = checker.check(CheckSpec("k", url=site.url, body_contains="ok!"))
    assert (missing.is_success, missing.error_message) == (False, 'body does not contain "ok!"')
    assert checker.check(CheckSpec("k", url=site.url, body_regex=r"all \w+ operational")).is_success is True
    assert checker.check(CheckSpec("k", url=site.url, body_regex=r"^down")).error_message == 'body does not match "^down"'


def test_a_body_check_reads_at_most_one_mebibyte_of_a_huge_body(site, checker):
    site.body, site.repeat = b"header ok ", 1 << 30
    began = time.monotonic()
    found = checker.check(CheckSpec("big", url=site.url, body_contains="ok", timeout_seconds=5))
    assert found.is_success is True
    beyond = checker.check(CheckSpec("big", url=site.url, body_contains="needle", timeout_seconds=5))
    assert (beyond.is_success, beyond.error_message) == (False, 'body does not contain "needle"')
    assert time.monotonic() - began < 5
    assert site.bytes_sent < 2 * 50 * (1 << 20)  # what socket buffers hold, far from 1 GB each


def test_expect_status_judges_the_status_and_a_listed_error_status_passes(site, checker):
    site.status = 503
    assert checker.check(CheckSpec("s", url=site.url, expect_status=(503,))).is_success is True
    wrong = checker.check(CheckSpec("s", url=site.url, expect_status=(200, "3xx")))
    assert wrong.error_message == "HTTP 503 Service Unavailable, expected 200 or 3xx"


def test_method_headers_and_body_are_sent_as_set(site, checker):
    result = checker.check(CheckSpec("post", url=site.url, method="POST", headers=(("X-Token", "t0k"),),
                                     body='{"ping": 1}'))
    assert result.is_success is True
    method, headers, body = site.requests[-1]
    assert (method, headers["X-Token"], body) == ("POST", "t0k", b'{"ping": 1}')
    assert checker.check(CheckSpec("head", url=site.url, method="HEAD")).status_code == 200
    assert site.requests[-1][0] == "HEAD"


def test_a_target_url_check_sends_a_get_and_never_waits_for_the_body(site, checker):
    site.body, site.repeat = b"x", 1 << 30
    result = checker.check(site.url, 5)
    assert (result.is_success, result.status_code) == (True, 200)
    assert site.requests[-1][0] == "GET"
    assert result.first_byte_ms is not None and result.dns_ms is not None


# --- tcp --------------------------------------------------------------------------------------

def test_a_tcp_port_that_closes_fails_the_check_and_recovers_when_it_listens_again(checker):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    spec = CheckSpec("db", kind="tcp", host="127.0.0.1", port=port, timeout_seconds=2)
    try:
        up = checker.check(spec)
        assert (up.is_success, up.status_code, up.error_message, up.target_url) == (
            True, None, None, f"tcp://127.0.0.1:{port}")
        assert up.connect_ms is not None
        listener.close()
        down = checker.check(spec)
        assert (down.is_success, down.error_message) == (False, "Connection failed: connection refused")
        listener = socket.create_server(("127.0.0.1", port))
        assert checker.check(spec).is_success is True
    finally:
        listener.close()


def test_a_tcp_check_leaves_no_connection_open(checker):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        assert checker.check(CheckSpec("db", kind="tcp", host="127.0.0.1", port=port)).is_success
        accepted, _ = listener.accept()
        accepted.settimeout(5)
        with accepted:
            assert accepted.recv(1) == b""  # the agent hung up: end of stream, not a timeout


# --- the engine -------------------------------------------------------------------------------

def test_a_check_whose_previous_one_still_runs_is_skipped_with_a_warning(checker, caplog):
    hanging = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    spec = CheckSpec("slow", url=f"http://127.0.0.1:{hanging.getsockname()[1]}/", timeout_seconds=0.5)
    try:
        with caplog.at_level(logging.WARNING, logger="agent.engine"):
            results = checker.check_all([spec, spec])
    finally:
        hanging.close()
    assert [r.error_message for r in results] == ["Request timed out after 500ms"]
    assert f"check {spec.url} skipped: its previous check is still in progress" in caplog.text


def test_many_checks_run_at_once_on_the_one_engine_thread(site, checker):
    specs = [CheckSpec(f"t{i}", url=f"{site.url}t/{i}") for i in range(200)]
    results = checker.check_all(specs)
    assert len(results) == 200 and all(r.is_success for r in results)
    assert len({r.event_uid for r in results}) == 200


def test_a_closed_engine_refuses_no_call_and_checks_nothing_more(site):
    engine_checker = Checker()
    try:
        assert engine_checker.check(site.url).is_success
    finally:
        engine_checker.close()
    engine_checker.engine.submit([CheckSpec("late", url=site.url)])  # ignored, not an error
    # Taken, it would count as unfinished for good: the loop that would finish it has ended.
    assert engine_checker.engine.wait_idle(0) is True
    assert (len(engine_checker.results), len(site.requests)) == (1, 1)


def test_a_check_that_cannot_be_set_up_fails_alone_and_the_rest_of_its_batch_runs(site, checker, monkeypatch):
    def prepare(handle, transfer, context):
        if transfer.spec.name == "bad":
            raise RuntimeError("a bug in a check kind")
        http.prepare(handle, transfer, context)

    monkeypatch.setitem(engine_module._KINDS, "http", (prepare, http.finish))
    specs = [CheckSpec(name, url=f"{site.url}{name}", timeout_seconds=2) for name in ("a", "bad", "b")]
    results = {r.target_url: r for r in checker.check_all(specs)}
    assert [results[s.url].is_success for s in specs] == [True, False, True]
    assert results[f"{site.url}bad"].error_message == "Request failed: the check could not be started (RuntimeError)"
    assert checker.engine.wait_idle(0) and checker.check(specs[1]).is_success is False  # still counting right


class _RefusingMulti:
    """A CurlMulti whose add_handle fails once (as it may, out of memory), else the real one."""

    def __init__(self, multi: pycurl.CurlMulti):
        self._multi, self.refused = multi, 0

    def add_handle(self, handle):
        if not self.refused:
            self.refused += 1
            raise pycurl.error(pycurl.E_MULTI_OUT_OF_MEMORY, "out of memory")
        return self._multi.add_handle(handle)

    def __getattr__(self, name):
        return getattr(self._multi, name)


def test_a_check_libcurl_will_not_take_fails_with_a_result_and_the_engine_carries_on(site, checker):
    checker.engine._multi = _RefusingMulti(checker.engine._multi)
    refused = checker.check(CheckSpec("first", url=site.url, timeout_seconds=2))
    assert (refused.is_success, refused.error_message) == (False, "Request failed: out of memory")
    assert checker.check(CheckSpec("first", url=site.url)).is_success  # not "still in progress"
    assert checker.engine.wait_idle(0)


def test_a_refused_port_is_refused_for_tcp_and_http_alike(checker):
    port = free_port()
    results = checker.check_all([CheckSpec("a", kind="tcp", host="127.0.0.1", port=port),
                                 CheckSpec("b", url=f"http://127.0.0.1:{port}/")])
    assert {r.error_message for r in results} == {"Connection failed: connection refused"}


def test_closing_an_engine_twice_is_harmless(site):
    twice = Checker()
    try:
        assert twice.check(site.url).is_success
    finally:
        twice.close()
    twice.close()
