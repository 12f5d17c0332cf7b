"""The webhook's body, signature and Retry-After, and the README's example receiver, as pure functions (SPEC §10)."""

import json
import time

import pytest

from backend.messages import Notice
from backend.notifiers.webhook import retry_after_seconds
from backend.rules import AlertType
from backend.notifiers.webhook_payload import encode, signature, signed_headers, webhook_body
from scripts.webhook_receiver_example import verified
from tests.support.procs import ROOT

ALERT = {"id": 7, "event_id": 70, "target": "상점", "target_url": "https://shop.example/", "alert_type": "ERROR",
         "status": "RESOLVED", "created_at": "2026-12-01 10:00:00", "acknowledged_at": None,
         "resolved_at": "2026-12-01 10:05:00", "resolved_event_id": 75, "message": "Service is down: HTTP 503"}


def notice(notice_type=AlertType.RECOVERY, alert=ALERT, **fields) -> Notice:
    values = dict(alert_id=7, notice_type=notice_type, target_url="https://shop.example/", status_code=200,
                  response_time_ms=87, error_message=None, occurred_at="2026-12-01 10:05:00", target="상점",
                  alert=alert)
    return Notice(**{**values, **fields})


def test_the_body_carries_the_notice_type_the_alert_at_send_time_and_the_event():
    assert webhook_body(notice(), "2026-12-01 10:05:01") == {
        "notice_type": "RECOVERY",
        "alert": {"id": 7, "target": "상점", "target_url": "https://shop.example/", "alert_type": "ERROR",
                  "status": "RESOLVED", "created_at": "2026-12-01 10:00:00", "acknowledged_at": None,
                  "resolved_at": "2026-12-01 10:05:00", "message": "Service is down: HTTP 503"},
        "event": {"target_url": "https://shop.example/", "status_code": 200, "response_time_ms": 87,
                  "error_message": None, "timestamp": "2026-12-01 10:05:00"},
        "sent_at": "2026-12-01 10:05:01",
    }


def test_a_notice_without_its_alert_row_still_names_the_alert_and_target():
    body = webhook_body(notice(AlertType.ERROR, alert=None, target="", status_code=None,
                               error_message="timed out"), "2026-12-01 10:05:01")
    assert body["alert"]["id"] == 7 and body["alert"]["target"] == "https://shop.example/"
    assert body["alert"]["alert_type"] == "ERROR" and body["alert"]["status"] is None
    assert body["event"]["status_code"] is None and body["event"]["error_message"] == "timed out"


def test_the_body_is_compact_utf8_json():
    raw = encode(webhook_body(notice(), "2026-12-01 10:05:01"))
    assert raw.startswith(b'{"notice_type":"RECOVERY","alert":{"id":7,"target":"\xec\x83\x81\xec\xa0\x90",')
    assert json.loads(raw) == webhook_body(notice(), "2026-12-01 10:05:01")


@pytest.mark.parametrize("body, expected", [
    # Computed independently: printf '1700000000.<body>' | openssl dgst -sha256 -hmac whsec-test
    (b'{"notice_type":"ERROR"}', "cfa262ed94475cb5832e82d17d91d4525a014db24d61c13f31cee260c6fac775"),
    ('{"name":"상점"}'.encode(), "c8ce80f0a6d4df452f06e7eb65cee91e90fe04649d5ed10b9405d54d9ccfa1fa"),
])
def test_the_signature_is_hmac_sha256_of_timestamp_dot_body(body, expected):
    assert signature("whsec-test", 1700000000, body) == f"sha256={expected}"
    assert signed_headers("whsec-test", 1700000000, body) == {
        "Content-Type": "application/json", "X-Webhook-Timestamp": "1700000000",
        "X-Signature-256": f"sha256={expected}"}


def test_the_example_receiver_accepts_a_fresh_signed_body_and_refuses_the_rest():
    body, now = b'{"notice_type":"ERROR"}', int(time.time())
    good = signature("s3cret", now, body)
    assert verified(b"s3cret", str(now), good, body)
    assert not verified(b"other", str(now), good, body)                   # wrong secret
    assert not verified(b"s3cret", str(now), good, body + b" ")           # body changed
    assert not verified(b"s3cret", str(now + 1), good, body)              # timestamp changed
    old = now - 301
    assert not verified(b"s3cret", str(old), signature("s3cret", old, body), body)  # a replay, 5 min later
    assert not verified(b"s3cret", "", good, body) and not verified(b"s3cret", "１２", good, body)
    assert not verified(b"s3cret", str(now), "sha256=ünïcode", body)


@pytest.mark.parametrize("value, expected", [
    ("120", 120.0), (" 3 ", 3.0), (None, None), ("", None), ("soon", None), ("-5", None), ("１２", None),
    ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),   # an HTTP date, 30 s after `now`
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),    # already passed
])
def test_retry_after_reads_seconds_or_an_http_date(value, expected):
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_seconds(value, now) == expected


def test_the_readme_shows_the_example_receiver_the_tests_use():
    example = (ROOT / "scripts" / "webhook_receiver_example.py").read_text(encoding="utf-8")
    assert f"```python\n{example}```" in (ROOT / "README.md").read_text(encoding="utf-8")
