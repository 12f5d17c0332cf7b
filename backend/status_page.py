"""The public status page (SPEC §12): the targets marked `public: true`, their state and uptime, nothing else.

What is shown is chosen here, whitelisted field by field: a name, a state word, uptime numbers and
a bar of days. No URL, host, token, alert message or setting ever leaves this module.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Engine

from backend import stats, store_dashboard, store_silences, store_status
from backend.silences import QuietTimes, suppression_at

BAR_DAYS = 30


def public_status(engine: Engine, fleet: stats.FleetStats, now: datetime | None = None) -> list[dict]:
    """Each public target's name, state (up, down, maintenance, unknown), uptime per window and daily bar."""
    now = now or datetime.now(timezone.utc)
    first_day = (now - timedelta(days=BAR_DAYS - 1)).date()
    with engine.connect() as conn:
        public = [row for row in store_status.file_target_specs(conn) if json.loads(row["spec"]).get("public")]
        if not public:
            return []
        names = [row["name"] for row in public]
        active = store_dashboard.active_alerts(conn)
        paused = store_silences.paused_names(conn)
        quiet = QuietTimes(conn, now)
        uptime = fleet.percent(conn, now)
        daily = store_status.daily_counts(conn, names, f"{first_day.isoformat()} 00:00:00")
        checked = store_status.checked_names(conn, names)
    shown = []
    for row in public:
        name, tags = row["name"], tuple(json.loads(row["spec"]).get("tags") or ())
        in_maintenance = name in paused or suppression_at(quiet.silences, quiet.windows, name, tags, now) is not None
        shown.append({"name": name,
                      "state": public_state(active.get(name), in_maintenance, name in checked),
                      "uptime": uptime.get(name, {window: None for window in stats.WINDOWS}),
                      "days": daily_bar(daily.get(name, {}), first_day)})
    return shown


def public_state(alert: dict | None, in_maintenance: bool, has_checks: bool) -> str:
    """The one word the public sees: down (an ERROR alert), maintenance (paused or silenced), up, or unknown."""
    if alert is not None and alert["alert_type"] == "ERROR":
        return "down"
    if in_maintenance:
        return "maintenance"
    return "up" if has_checks else "unknown"


def daily_bar(counts: dict[str, tuple[int, int]], first_day: date, days: int = BAR_DAYS) -> list[dict]:
    """One entry per day from `first_day`, oldest first: the day and its uptime % (None for a day without checks)."""
    bar = []
    for offset in range(days):
        day = (first_day + timedelta(days=offset)).isoformat()
        checks, failures = counts.get(day, (0, 0))
        bar.append({"day": day, "percent": (checks - failures) * 10000 // checks / 100 if checks else None})
    return bar
