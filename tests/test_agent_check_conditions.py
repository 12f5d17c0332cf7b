"""The check kinds' pure parts, by table: specs from the targets list, conditions, libcurl's errors, TLS dates."""

from __future__ import annotations

from datetime import datetime, timezone

import pycurl
import pytest

from agent.checks.spec import CheckSpec, spec_for_url, spec_from_target
from agent.checks import conditions
from agent.checks.curl_errors import describe_curl_error
from agent.checks.http import judge
from agent.checks.tls import default_ca_bundle, expiry_from_certinfo, parse_cert_date
from agent.engine import proxies_from

HTTP_ENTRY = {"name": "shop", "kind": "http", "url": "https://shop.example.com/health", "interval": 30,
              "timeout": 5, "method": "GET", "headers": {"Authorization": "Bearer x"}, "body": None,
              "expect_status": [200, "3xx"], "body_contains": "ok", "body_regex": None, "json_path": None,
              "json_equals": None, "tls_verify": True, "ca_file": None}


def test_an_http_entry_of_the_targets_list_becomes_a_spec():
    spec = spec_from_target(HTTP_ENTRY)
    assert spec == CheckSpec(name="shop", kind="http", url="https://shop.example.com/health", interval_seconds=30.0,
                             timeout_seconds=5.0, headers=(("Authorization", "Bearer x"),),
                             expect_status=(200, "3xx"), body_contains="ok", event_target="shop")
    assert spec.target_url == "https://shop.example.com/health" and spec.needs_body


def test_a_tcp_entry_becomes_a_spec_whose_target_url_is_tcp_host_port():
    spec = spec_from_target({"name": "db", "kind": "tcp", "host": "10.0.0.5", "port": 5432, "interval": 30,
                             "timeout": 5})
    assert (spec.kind, spec.host, spec.port, spec.target_url) == ("tcp", "10.0.0.5", 5432, "tcp://10.0.0.5:5432")
    assert spec_from_target({"name": "v6", "kind": "tcp", "host": "::1", "port": 22}).target_url == "tcp://[::1]:22"


@pytest.mark.parametrize("change, key", [
    ({"kind": "ftp"}, "kind"), ({"timeout": 0}, "timeout"), ({"interval": "30"}, "interval"),
    ({"url": "ftp://x"}, "url"), ({"url": None}, "url"), ({"expect_status": [200, "6xx"]}, "expect_status"),
    ({"expect_status": [99]}, "expect_status"), ({"headers": {"X": 1}}, "headers"), ({"name": ""}, "name"),
    ({"kind": "tcp", "host": "db", "port": 70000}, "port"),
])
def test_a_bad_entry_is_refused_naming_the_key_and_never_a_secret(change, key):
    with pytest.raises(ValueError) as raised:
        spec_from_target({**HTTP_ENTRY, **change})
    assert key in str(raised.value)
    assert "Bearer" not in str(raised.value)


def test_a_target_url_spec_has_todays_defaults():
    spec = spec_for_url("https://example.com", 30.0, 5.0)
    assert (spec.name, spec.url, spec.method, spec.expect_status, spec.needs_body, spec.tls_verify) == (
        "https://example.com", "https://example.com", "GET", None, False, True)
    assert spec.event_target is None  # its events carry no `target`, exactly as before SPEC §8


@pytest.mark.parametrize("status, expect, passes", [
    (200, None, True), (399, None, True), (400, None, False), (503, None, False),
    (200, (200,), True), (201, (200,), False), (302, (200, "3xx"), True), (503, ("5xx",), True),
    (404, (200, 404), True), (500, ("4xx",), False),
])
def test_expect_status_takes_codes_and_classes_and_defaults_to_below_400(status, expect, passes):
    assert conditions.is_expected_status(status, expect) is passes


@pytest.mark.parametrize("status, reason, expect, message", [
    (503, "", None, "HTTP 503 Service Unavailable"),             # exactly the pre-§8 text
    (599, "Custom Trouble", None, "HTTP 599 Custom Trouble"),    # an unknown code: the server's phrase
    (200, "", (201,), "HTTP 200 OK, expected 201"),
    (301, "", (200, "2xx"), "HTTP 301 Moved Permanently, expected 200 or 2xx"),
    (200, "", None, None),
])
def test_a_status_outside_expect_status_says_what_came_and_what_was_expected(status, reason, expect, message):
    assert conditions.status_problem(status, reason, expect) == message


@pytest.mark.parametrize("spec, status, body, message", [
    (CheckSpec("k", body_contains="ok"), 200, b"all ok", None),
    (CheckSpec("k", body_contains="ok"), 200, b"down", 'body does not contain "ok"'),
    (CheckSpec("k", body_contains="ok"), 503, b"ok", "HTTP 503 Service Unavailable"),  # the status first
    (CheckSpec("k", body_regex=r"up|ok"), 200, b"status: up", None),
    (CheckSpec("k", body_regex=r"^up$"), 200, b"down", 'body does not match "^up$"'),
    (CheckSpec("k", body_regex="("), 200, b"x", 'body_regex "(" is not a valid regular expression'),
    (CheckSpec("k", json_path="$.status", json_equals="up"), 200, b'{"status": "up"}', None),
    (CheckSpec("k", json_path="$.status", json_equals="up"), 200, b'{"status": "degraded"}',
     '$.status is "degraded", expected "up"'),
    (CheckSpec("k", json_path="$.a.b[1].c", json_equals=1), 200, b'{"a": {"b": [0, {"c": 1.0}]}}', None),
    (CheckSpec("k", json_path="$.ok", json_equals=1), 200, b'{"ok": true}', "$.ok is true, expected 1"),
    (CheckSpec("k", json_path="$.items[3]", json_equals=None), 200, b'{"items": [1]}', "$.items[3] is missing"),
    (CheckSpec("k", json_path="$.x", json_equals=None), 200, b'{"x": null}', None),  # present is enough
    (CheckSpec("k", json_path="$.x", json_equals="up"), 200, b"<html>", "body is not JSON"),
    (CheckSpec("k", json_path="status", json_equals="up"), 200, b"{}", 'json_path "status" must start with $'),
    (CheckSpec("k", json_path="$.a..b", json_equals="up"), 200, b"{}",
     'json_path "$.a..b" is not of the form $.a.b[0].c'),
])
def test_body_and_json_conditions_say_which_one_failed(spec, status, body, message):
    assert judge(spec, status, "", body) == message


def test_a_json_path_parses_into_keys_and_indexes():
    assert conditions.parse_json_path("$") == ()
    assert conditions.parse_json_path("$.a.b[0].c") == ("a", "b", 0, "c")


@pytest.mark.parametrize("code, message, os_errno, text", [
    (pycurl.E_COULDNT_RESOLVE_HOST, "Could not resolve host: x.invalid", 0, "DNS lookup failed for x.invalid"),
    (pycurl.E_COULDNT_CONNECT, "Failed to connect to 127.0.0.1 port 9: Couldn't connect to server", 111,
     "Connection failed: connection refused"),
    (pycurl.E_RECV_ERROR, "Recv failure: Connection reset by peer", 104, "Connection failed: connection reset by peer"),
    (pycurl.E_GOT_NOTHING, "Empty reply from server", 0,
     "Connection failed: the server closed the connection without a response"),
    (pycurl.E_TOO_MANY_REDIRECTS, "Maximum (30) redirects followed", 0, "Too many redirects"),
    (pycurl.E_PEER_FAILED_VERIFICATION, "SSL certificate OpenSSL verify result: self-signed certificate (18)", 0,
     "TLS error: certificate verify failed: self-signed certificate"),
    (pycurl.E_PEER_FAILED_VERIFICATION, "SSL certificate problem: certificate has expired", 0,
     "TLS error: certificate verify failed: certificate has expired"),
    (pycurl.E_SSL_CONNECT_ERROR, "OpenSSL/3 error: wrong version number", 0, "TLS error: OpenSSL/3 error: wrong version number"),
    (pycurl.E_UNSUPPORTED_PROTOCOL, "Protocol \"ftp\" not supported", 0, "Request failed: Protocol \"ftp\" not supported"),
])
def test_libcurl_errors_read_as_the_agent_has_always_worded_them(code, message, os_errno, text):
    assert describe_curl_error(code, message, os_errno, "x.invalid") == text


@pytest.mark.parametrize("text, expected", [
    ("Dec  4 14:47:28 2026 GMT", datetime(2026, 12, 4, 14, 47, 28, tzinfo=timezone.utc)),
    ("Jan 15 00:00:00 2030 GMT", datetime(2030, 1, 15, tzinfo=timezone.utc)),
    ("2026-12-04 14:47:28 GMT", datetime(2026, 12, 4, 14, 47, 28, tzinfo=timezone.utc)),
    ("not a date", None),
])
def test_the_certificates_expire_date_parses_as_utc(text, expected):
    assert parse_cert_date(text) == expected


def test_the_expiry_is_the_server_certificates_not_its_issuers():
    chain = [[("Subject", "CN = site"), ("Expire date", "Dec  4 14:47:28 2026 GMT")],
             [("Subject", "CN = ca"), ("Expire date", "Jan  1 00:00:00 2035 GMT")]]
    assert expiry_from_certinfo(chain) == datetime(2026, 12, 4, 14, 47, 28, tzinfo=timezone.utc)
    assert expiry_from_certinfo([]) is None


def test_the_ca_bundle_is_the_environments_then_the_systems_then_certifis():
    import certifi
    assert default_ca_bundle({"REQUESTS_CA_BUNDLE": "/x.pem"}, lambda p: True) == "/x.pem"
    assert default_ca_bundle({}, lambda p: p == "/etc/pki/tls/certs/ca-bundle.crt") == "/etc/pki/tls/certs/ca-bundle.crt"
    assert default_ca_bundle({}, lambda p: False) == certifi.where()


def test_proxies_are_read_like_requests_reads_them():
    assert proxies_from({"HTTP_PROXY": "http://up:1", "http_proxy": "http://low:1", "NO_PROXY": "a,b",
                         "HTTPS_PROXY": "http://s:1", "TARGET_URL": "x"}) == {
        "http": "http://low:1", "https": "http://s:1", "no": "a,b"}
    assert proxies_from({"HTTP_PROXY": "http://evil:1", "REQUEST_METHOD": "GET"}) == {}
