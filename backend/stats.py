"""GET /targets/<name>/stats: checks, failures, uptime and response times over a window (SPEC §8).

Read from the hourly rollups plus the events the roller has not counted yet, so a check stored a
moment ago counts and a 30-day window reads at most 721 rollup rows. A window starts at the top of
the hour that holds `now - window`, so it covers the whole window and up to one hour more.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import Connection, Engine

from backend import histogram, store, store_dashboard
from backend.errors import INVALID_REQUEST, ApiError
from backend.rollups import HourCounts, hour_of
from backend.time_text import utc_text

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_WINDOW = "24h"


def parse_window(raw: str | None) -> str:
    """The ?window= of a stats request, default 24h; ApiError 400 naming it otherwise."""
    if raw is None:
        return DEFAULT_WINDOW
    if raw not in WINDOWS:
        raise ApiError(400, f"window must be one of {', '.join(WINDOWS)}.",
                       details={"code": INVALID_REQUEST, "field": "window"})
    return raw


def target_stats(engine: Engine, name: str, window: str, now: datetime | None = None) -> dict:
    """A target's stats over a window; ApiError 404 for a name that is no file target and has no checks."""
    now = now or datetime.now(timezone.utc)
    from_hour = hour_of(utc_text(now - WINDOWS[window]))
    with engine.connect() as conn:
        watermark, rows = store.rollups_since(conn, name, from_hour)
        # After the rollups, never before: whatever the roller counts meanwhile is above the
        # watermark read with them, so it is counted here once, from the events.
        unrolled = store.events_of_target_after(conn, name, watermark)
        if not rows and not unrolled and not store.has_stats_or_file_target(conn, name):
            raise ApiError(404, f"Target {name!r} is not in the targets file and has no checks.")
    checks, failures, ms_sums, ms_counts, histograms = zip(*rows) if rows else ((),) * 5
    counts = HourCounts(sum(checks), sum(failures), sum(ms_sums), sum(ms_counts), histogram.sum_of(histograms))
    for event in unrolled:
        if event.timestamp >= from_hour:
            counts.add_event(event)
    return {"target": name, "window": window, "from": from_hour, "to": utc_text(now),
            "checks": counts.checks, "failures": counts.failures,
            "uptime_percent": _uptime_percent(counts.checks, counts.failures),
            "response_time_ms": _response_times(counts)}


def _uptime_percent(checks: int, failures: int) -> float | None:
    # Rounded down to 0.01, so that 100 means no failure at all.
    return (checks - failures) * 10000 // checks / 100 if checks else None


def _response_times(counts: HourCounts) -> dict:
    if not counts.response_ms_count:
        return {"mean": None, "p95": None}
    p95 = histogram.percentile_ms(counts.histogram, 95)
    return {"mean": round(counts.response_ms_sum / counts.response_ms_count, 1), "p95": round(p95, 1)}


# Beyond this many events above the sums' watermark, the dashboard's fleet view leaves the rest uncounted.
FLEET_UNROLLED_LIMIT = 100000
FLEET_SUMS_SECONDS = 30.0  # how long one process reuses what it read of the fleet's rollups (a 30-day scan)


class FleetStats:
    """The whole fleet's uptime and hourly response times (SPEC §12), from rollups read at most every few seconds.

    Uptime is exact whatever the age of the sums: they come with the watermark they were read
    under, and every event above it is counted from the events table, rolled up since or not.
    """

    def __init__(self, reuse_seconds: float = FLEET_SUMS_SECONDS, clock=time.monotonic):
        self.reuse_seconds = reuse_seconds
        self.clock = clock
        self._sums: tuple[float, dict, int, dict] | None = None  # (read at, from_hours, watermark, counts)
        self._response: tuple[float, str, dict] | None = None  # (read at, from_hour, means)
        self._lock = threading.Lock()

    def percent(self, conn: Connection, now: datetime | None = None) -> dict[str, dict[str, float | None]]:
        """Uptime percent by target and window, None for a window without checks."""
        now = now or datetime.now(timezone.utc)
        from_hours = {window: hour_of(utc_text(now - span)) for window, span in WINDOWS.items()}
        watermark, counts = self._rollup_sums(conn, from_hours)
        totals = {target: {w: list(pair) for w, pair in windows.items()} for target, windows in counts.items()}
        for event in store.events_after(conn, watermark, FLEET_UNROLLED_LIMIT):
            windows = totals.setdefault(event.key, {w: [0, 0] for w in WINDOWS})
            for window, from_hour in from_hours.items():
                if event.timestamp >= from_hour:
                    windows[window][0] += 1
                    windows[window][1] += event.failed
        return {target: {w: _uptime_percent(*pair) for w, pair in windows.items()}
                for target, windows in totals.items()}

    def hourly_response_ms(self, conn: Connection, now: datetime | None = None) -> dict[str, list[tuple[str, float]]]:
        """Per target, the mean response time of each hour of the last 24, oldest first (a few seconds old at most)."""
        from_hour = hour_of(utc_text((now or datetime.now(timezone.utc)) - WINDOWS["24h"]))
        with self._lock:
            kept = self._response
            if kept is not None and kept[1] == from_hour and self.clock() - kept[0] < self.reuse_seconds:
                return kept[2]
        means = store_dashboard.hourly_response_ms(conn, from_hour)
        with self._lock:
            self._response = (self.clock(), from_hour, means)
        return means

    def _rollup_sums(self, conn: Connection, from_hours: dict[str, str]) -> tuple[int, dict]:
        with self._lock:
            kept = self._sums
            if kept is not None and kept[1] == from_hours and self.clock() - kept[0] < self.reuse_seconds:
                return kept[2], kept[3]
        watermark, counts = store_dashboard.uptime_counts(conn, from_hours)
        with self._lock:
            self._sums = (self.clock(), from_hours, watermark, counts)
        return watermark, counts
