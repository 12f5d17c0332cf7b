"""The stored forms of a time: UTC text of a fixed width, so that text order is time order (SPEC §3)."""

from __future__ import annotations

from datetime import datetime, timezone

# isoformat, not strftime: strftime("%Y") does not zero-pad years
# before 1000 on glibc, and every form here must keep a fixed width so that text order is time order.


def _naive_utc(moment: datetime) -> datetime:
    """The moment in UTC without tzinfo (a naive moment is taken as UTC already)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def utc_text(moment: datetime) -> str:
    """The one stored form of a time: UTC as YYYY-MM-DD HH:MM:SS (SPEC §3)."""
    return _naive_utc(moment).isoformat(sep=" ", timespec="seconds")


def now_text() -> str:
    """The current time in the stored form."""
    return utc_text(datetime.now(timezone.utc))


def check_time_text(moment: datetime) -> str:
    """A check's time as events.checked_at and targets.last_check_at store it: YYYY-MM-DD HH:MM:SS.fff, UTC."""
    # Fixed width, so text order is time order in SQL and in Python; milliseconds (cut, never
    # rounded into the next second) are enough to order the checks of one target.
    return _naive_utc(moment).isoformat(sep=" ", timespec="milliseconds")


def precise_text(moment: datetime) -> str:
    """A UTC time to the microsecond, in a form that sorts as text (for scheduling deliveries and leases)."""
    return _naive_utc(moment).isoformat(sep=" ", timespec="microseconds")
