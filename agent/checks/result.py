"""One measured check and its event for `POST /events` (SPEC §4, §7, §9)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from agent.event_uid import new_event_uid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    target_url: str
    timestamp: datetime  # aware UTC, when the check started
    is_success: bool
    status_code: int | None
    response_time_ms: int | None
    error_message: str | None
    # The idempotency key, made once per check: a retried send repeats it, so the backend can
    # store the event once however often it arrives. Time-ordered (agent/event_uid.py).
    event_uid: str = field(default_factory=new_event_uid)
    # Measured by libcurl when known, from the start of the (last) request, in ms (SPEC §9). Sent in
    # a file target's event only: a TARGET_URL's event stays exactly as SPEC §4 has it.
    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    first_byte_ms: float | None = None
    cert_expires_at: datetime | None = None  # https: the server certificate's notAfter, aware UTC
    target: str | None = None  # a file target's name (the event's `target`); None for a TARGET_URL (SPEC §8)

    def to_event(self, agent: str | None = None) -> dict:
        """One element of the `POST /events` array for this result (SPEC §4), with its event_uid.

        A file target's event also names the target, `agent` the agent that checked it (SPEC §8), and
        carries the phase times and certificate expiry measured (SPEC §9); a TARGET_URL's event has
        none of them, exactly as before.
        """
        timestamp = self.timestamp.astimezone(timezone.utc).isoformat(timespec="milliseconds")
        event = {
            "target_url": self.target_url,
            "timestamp": timestamp.replace("+00:00", "Z"),
            "is_success": self.is_success,
            "status_code": self.status_code,
            "response_time_ms": self.response_time_ms,
            "error_message": self.error_message,
            "event_uid": self.event_uid,
        }
        if self.target is not None:
            event["target"] = self.target
            if agent is not None:
                event["agent"] = agent
            for name in ("dns_ms", "connect_ms", "tls_ms", "first_byte_ms"):
                value = getattr(self, name)
                if value is not None:
                    event[name] = round(value, 3)
            if self.cert_expires_at is not None:
                expiry = self.cert_expires_at.astimezone(timezone.utc).isoformat(timespec="seconds")
                event["cert_expires_at"] = expiry.replace("+00:00", "Z")
        return event


def log_result(result: CheckResult) -> None:
    """The per-check line (SPEC §7): `check <url> -> 200 in 12ms`, then the phase times when known."""
    if result.is_success:
        if result.status_code is None:  # a tcp check: no status, the connection is the answer
            log.info("check %s -> connected in %sms%s", result.target_url, result.response_time_ms,
                     _details(result))
        else:
            log.info("check %s -> %s in %sms%s", result.target_url, result.status_code,
                     result.response_time_ms, _details(result))
    elif result.status_code is not None:
        log.warning("check %s -> failed: %s in %sms%s", result.target_url, result.error_message,
                    result.response_time_ms, _details(result))
    else:
        log.warning("check %s -> failed: %s", result.target_url, result.error_message)


def _details(result: CheckResult) -> str:
    # Only what was measured: a plain http target on a fast network shows "(dns 0.0, connect 0.1, ...)".
    parts = [f"{label} {value:.1f}" for label, value in (
        ("dns", result.dns_ms), ("connect", result.connect_ms), ("tls", result.tls_ms),
        ("first byte", result.first_byte_ms)) if value is not None]
    text = f" ({', '.join(parts)} ms)" if parts else ""
    if result.cert_expires_at is not None:
        text += f", certificate expires {result.cert_expires_at:%Y-%m-%d %H:%M} UTC"
    return text
