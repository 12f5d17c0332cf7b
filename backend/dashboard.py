"""What the dashboard's pages show (SPEC §12), read for the whole fleet at once: a fixed number of queries."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Engine

from backend import stats, store, store_dashboard, store_silences
from backend.errors import ApiError
from backend.rules import AlertStatus
from backend.target_list import target_state

RECENT_CHECKS = 100
RECENT_ALERTS = 20
RECENT_ATTEMPTS = 50
ALERTS_PAGE = 200


def overview(engine: Engine, fleet: stats.FleetStats, now: datetime | None = None) -> list[dict]:
    """Every target with its state, active alert, last check, uptime per window and hourly response times (24 h)."""
    now = now or datetime.now(timezone.utc)
    with engine.connect() as conn:
        rows = store_dashboard.all_targets(conn)
        active = store_dashboard.active_alerts(conn)
        percents = fleet.percent(conn, now)
        response = fleet.hourly_response_ms(conn, now)
        paused = store_silences.paused_names(conn)  # one read for the fleet: PAUSED as GET /targets says it
    no_uptime = {window: None for window in stats.WINDOWS}
    return [_shown(row, active.get(row["name"]), percents.get(row["name"], no_uptime), response.get(row["name"], []),
                   row["name"] in paused) for row in rows]


def target_detail(engine: Engine, name: str, now: datetime | None = None) -> dict | None:
    """One target's state, recent checks, alerts and delivery attempts; None when no target has that name."""
    with engine.connect() as conn:
        row = store_dashboard.one_target(conn, name)
        if row is None:
            return None
        alerts = store.list_alerts(conn, None, None, RECENT_ALERTS, 0, target=name)
        active = next((a for a in alerts if a["status"] in (AlertStatus.OPEN.value, AlertStatus.ACK.value)), None)
        checks = store_dashboard.recent_checks(conn, name, row["target_url"], RECENT_CHECKS)
        attempts = store_dashboard.delivery_attempts(conn, name, RECENT_ATTEMPTS)
        is_paused = name in store_silences.paused_names(conn)
    try:
        uptime = {w: stats.target_stats(engine, name, w, now)["uptime_percent"] for w in stats.WINDOWS}
    except ApiError:  # a target of agents only whose every check and rollup was purged
        uptime = {w: None for w in stats.WINDOWS}
    shown = _shown(row, active, uptime, [], is_paused)
    shown.update(checks=checks, alerts=alerts, attempts=attempts)
    return shown


def alert_list(engine: Engine, status: str | None) -> list[dict]:
    """The newest alerts, optionally of one status (SPEC §4's filter)."""
    with engine.connect() as conn:
        return store.list_alerts(conn, status, None, ALERTS_PAGE, 0)


def _shown(row: dict, alert: dict | None, uptime: dict, response: list[tuple[str, float]], is_paused: bool) -> dict:
    return {"name": row["name"], "kind": row["kind"], "target_url": row["target_url"],
            "in_file": row["in_file"], "paused": is_paused,
            "state": target_state(row["last_check_at"], alert, is_paused), "alert": alert,
            "last_check": (row["last_check_at"] or "")[:19] or None,
            "failures_in_a_row": row["failures_in_a_row"] or 0, "uptime": uptime, "response_ms": response}
