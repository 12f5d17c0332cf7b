"""The webhook's JSON body and its signature, built by pure functions (SPEC §10)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from backend.messages import Notice

# The alert's fields a receiver gets, as GET /alerts/<id> shows them.
ALERT_FIELDS = ("id", "target", "target_url", "alert_type", "status", "created_at", "acknowledged_at",
                "resolved_at", "message")


def webhook_body(notice: Notice, sent_at: str) -> dict[str, Any]:
    """The notice as JSON: `notice_type`, the `alert` at send time, the `event` that caused it, `sent_at`."""
    alert = dict(notice.alert or {})
    # A notice built without the alert row (a test notice) still says which alert and target it is about.
    alert.setdefault("id", notice.alert_id)
    alert.setdefault("target", notice.target or notice.target_url)
    alert.setdefault("target_url", notice.target_url)
    alert.setdefault("alert_type", notice.notice_type.value)
    return {
        "notice_type": notice.notice_type.value,
        "alert": {name: alert.get(name) for name in ALERT_FIELDS},
        "event": {"target_url": notice.target_url, "status_code": notice.status_code,
                  "response_time_ms": notice.response_time_ms, "error_message": notice.error_message,
                  "timestamp": notice.occurred_at},
        "sent_at": sent_at,
    }


def encode(body: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed: compact JSON in UTF-8."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature(secret: str, timestamp: int, raw_body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 with the secret of "<timestamp>.<raw body>">`, X-Signature-256's value."""
    signed = f"{timestamp}.".encode("ascii") + raw_body
    return "sha256=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signed_headers(secret: str, timestamp: int, raw_body: bytes) -> dict[str, str]:
    """The headers that let a receiver verify the body and refuse a replay (SPEC §10)."""
    return {"Content-Type": "application/json", "X-Webhook-Timestamp": str(timestamp),
            "X-Signature-256": signature(secret, timestamp, raw_body)}
