"""One TARGET_URL check on the libcurl engine against real local servers: the events of SPEC §7, unchanged."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler

import uuid

import pytest

from agent.checks.result import CheckResult
from agent.checks.spec import spec_from_target
from tests.support.checks import Checker, checker  # noqa: F401  (a fixture)
from tests.support.procs import free_port
from tests.support.servers import LoopbackServer


def test_200_is_a_successful_check_with_a_response_time(target, checker):
    before = datetime.now(timezone.utc)
    result = checker.check(target.url, 5)
    assert result.is_success is True
    assert result.status_code == 200
    assert isinstance(result.response_time_ms, int) and 0 <= result.response_time_ms < 5000
    assert result.error_message is None
    assert result.target_url == target.url
    assert result.timestamp.tzinfo is not None
    assert before - timedelta(seconds=1) <= result.timestamp <= datetime.now(timezone.utc)


def test_503_is_a_failed_check_with_its_reason(target, checker):
    target.set_status(503)
    result = checker.check(target.url, 5)
    assert result.is_success is False
    assert result.status_code == 503
    assert result.response_time_ms is not None
    assert result.error_message == "HTTP 503 Service Unavailable"


class _Redirect(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(302)
        self.send_header("Location", self.server.location)  # type: ignore[attr-defined]
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def redirect():
    """A server on 127.0.0.1 that answers every GET with 302 to its `location`."""
    server = LoopbackServer(_Redirect)
    server.location = server.url
    yield server.start()
    server.stop()


def test_a_redirect_is_followed_to_its_answer(target, redirect, checker):
    target.set_status(404)
    redirect.location = target.url
    result = checker.check(redirect.url, 5)
    assert (result.is_success, result.status_code) == (False, 404)
    assert result.error_message == "HTTP 404 Not Found"
    assert target.hits == 1


def test_a_redirect_loop_is_too_many_redirects(redirect, checker):
    result = checker.check(redirect.url, 5)
    assert (result.is_success, result.status_code, result.response_time_ms) == (False, None, None)
    assert result.error_message == "Too many redirects"


def test_a_hanging_target_times_out_with_the_configured_timeout(target, checker):
    target.hang()
    result = checker.check(target.url, 0.3)
    assert result.is_success is False
    assert result.status_code is None
    assert result.error_message == "Request timed out after 300ms"
    assert 250 <= result.response_time_ms < 3000


def test_a_closed_port_is_a_failed_connection(checker):
    url = f"http://127.0.0.1:{free_port()}/"
    result = checker.check(url, 2)
    assert result.is_success is False
    assert (result.status_code, result.response_time_ms) == (None, None)
    assert result.error_message == "Connection failed: connection refused"


def test_the_event_is_the_post_events_body():
    result = CheckResult("https://example.com", datetime(2025, 1, 8, 15, 30, 45, tzinfo=timezone.utc),
                         False, 503, 812, "HTTP 503 Service Unavailable",
                         event_uid="0b7f5a8e-3c1d-4f53-9a55-6c1e2f0d9a11")
    assert result.to_event() == {
        "target_url": "https://example.com",
        "timestamp": "2025-01-08T15:30:45.000Z",
        "is_success": False,
        "status_code": 503,
        "response_time_ms": 812,
        "error_message": "HTTP 503 Service Unavailable",
        "event_uid": "0b7f5a8e-3c1d-4f53-9a55-6c1e2f0d9a11",
    }


def test_a_file_targets_event_names_the_target_and_the_agent_and_a_target_urls_does_not(target, checker):
    pulled = checker.check(spec_from_target({"name": "site", "url": target.url}))
    assert (pulled.to_event("box-1")["target"], pulled.to_event("box-1")["agent"]) == ("site", "box-1")
    plain = checker.check(target.url).to_event("box-1")
    assert "target" not in plain and "agent" not in plain  # TARGET_URL: exactly as before


def test_every_check_gets_its_own_time_ordered_event_uid(target, checker):
    first, second = checker.check(target.url, 5), checker.check(target.url, 5)
    assert first.event_uid != second.event_uid
    assert uuid.UUID(first.event_uid).version == 7
    assert first.to_event()["event_uid"] == first.event_uid == first.to_event()["event_uid"]


def test_the_event_timestamp_is_utc_whatever_zone_it_was_taken_in():
    taken = datetime(2025, 1, 9, 0, 30, 45, tzinfo=timezone(timedelta(hours=9)))
    result = CheckResult("https://example.com", taken, True, 200, 5, None)
    assert result.to_event()["timestamp"] == "2025-01-08T15:30:45.000Z"


def test_a_proxy_from_the_environment_is_used(target, monkeypatch):
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", target.url)  # the target answers the proxied GET itself
    proxied = Checker(dict(os.environ))  # the engine reads the environment once, when it starts
    try:
        first = proxied.check("http://outage-agent-test.invalid/", 2)
        second = proxied.check("http://outage-agent-test.invalid/", 2)
    finally:
        proxied.close()
    assert (first.status_code, second.status_code) == (200, 200)
    assert target.hits == 2


def test_a_file_targets_event_carries_the_phase_times_and_certificate_expiry_and_a_target_urls_does_not():
    """SPEC §9: measured times and the certificate's expiry go to the backend for file targets only."""
    taken = datetime(2025, 1, 8, 15, 30, 45, tzinfo=timezone.utc)
    expiry = datetime(2025, 1, 11, 19, 30, 0, tzinfo=timezone(timedelta(hours=9)))
    measured = {"dns_ms": 0.1234, "connect_ms": 1.5, "tls_ms": 4.0, "first_byte_ms": 9.87654, "cert_expires_at": expiry}
    event = CheckResult("https://example.com", taken, True, 200, 10, None, target="site", **measured).to_event()
    assert {k: event[k] for k in measured} == {"dns_ms": 0.123, "connect_ms": 1.5, "tls_ms": 4.0,
                                               "first_byte_ms": 9.877, "cert_expires_at": "2025-01-11T10:30:00Z"}
    plain = CheckResult("https://example.com", taken, True, 200, 10, None, **measured).to_event()
    assert not set(measured) & set(plain)
