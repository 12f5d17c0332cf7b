"""Push targets (SPEC §9): recording a ping, or the failure a ping to /fail reports."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from backend import store
from backend.ingest import Recorded
from backend.own_events import backend_event
from backend.ping_tokens import redact_ping_paths
from backend.service import AlertService

log = logging.getLogger(__name__)

MAX_FAIL_MESSAGE = 500  # characters of a /fail body kept as the error message
MAX_FAIL_BODY = 4 * MAX_FAIL_MESSAGE  # bytes read of it: enough for the message in any UTF-8
FAIL_WITHOUT_MESSAGE = "failure reported by a ping to /fail"


def fail_message(body: bytes) -> str:
    """A /fail body as an error message: printable text on one line, at most MAX_FAIL_MESSAGE characters."""
    text = body.decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() else " " for c in text)  # NUL, controls and line breaks
    text = redact_ping_paths(" ".join(text.split()))[:MAX_FAIL_MESSAGE]
    return text or FAIL_WITHOUT_MESSAGE


def record_ping(service: AlertService, token: str, failure: str | None) -> Recorded | None:
    """Store a ping (a success, or the failure it reports) for the push target with this token; None if none has."""
    with service.engine.connect() as conn:  # read first: a wrong token never waits for the write lock
        target = store.push_target_by_token(conn, token)
    if target is None:
        return None
    event = backend_event(target["target_url"], target["name"], datetime.now(timezone.utc), failure is None, failure)
    [recorded] = service.record_events([event], at_once=True)
    log.info("ping of push target %s: %s", target["name"], "ok" if failure is None else f"failure: {failure}")
    return recorded
