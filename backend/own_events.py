"""Events the backend makes on its own behalf (SPEC §8, §9): pings of push targets and missed deadlines."""

from __future__ import annotations

from datetime import datetime

from backend.validation import EventIn


def backend_event(target_url: str, name: str, at: datetime, ok: bool, message: str | None,
                  uid: str | None = None) -> EventIn:
    """An event built by the backend itself: its push:// target_url is never accepted from POST /events."""
    # model_construct skips the validators, which (rightly) refuse push:// from clients; every value
    # here is made by the backend: an aware UTC time, a name from the loaded list.
    return EventIn.model_construct(target_url=target_url, timestamp=at.isoformat(), is_success=ok, status_code=None,
                                   response_time_ms=None, error_message=message, event_uid=uid, target=name,
                                   agent=None)

