"""The dashboard's reads (SPEC §12): whole-fleet queries, one statement each, never one per target."""

from __future__ import annotations

from sqlalchemy import Connection, case, func, select

from backend.database import alerts, events, file_targets, notification_logs, rollup_progress, rollups, targets
from backend.rules import ACTIVE_STATUSES
from backend.store import STATS_KEY

_ALERT_COLUMNS = [column for column in alerts.c if column.name != "reason"]
_TARGET_COLUMNS = (file_targets.c.kind, file_targets.c.target_url, targets.c.failures_in_a_row,
                   targets.c.last_check_at)


def all_targets(conn: Connection) -> list[dict]:
    """Every target: the file's in file order, then those only agents name (by URL), each with its rule state."""
    in_file = (select(file_targets.c.name, *_TARGET_COLUMNS)
               .select_from(file_targets.outerjoin(targets, targets.c.name == file_targets.c.name))
               .order_by(file_targets.c.position))
    others = (select(targets.c.name, targets.c.failures_in_a_row, targets.c.last_check_at)
              .where(~targets.c.name.in_(select(file_targets.c.name))).order_by(targets.c.name))
    rows = [{**row, "in_file": True} for row in conn.execute(in_file).mappings()]
    rows += [{**row, "kind": "http", "target_url": row["name"], "in_file": False}
             for row in conn.execute(others).mappings()]
    return rows


def one_target(conn: Connection, name: str) -> dict | None:
    """One target by name as all_targets shows it, or None when neither the file nor any check knows it."""
    row = conn.execute(select(file_targets.c.name, *_TARGET_COLUMNS)
                       .select_from(file_targets.outerjoin(targets, targets.c.name == file_targets.c.name))
                       .where(file_targets.c.name == name)).mappings().first()
    if row is not None:
        return {**row, "in_file": True}
    row = conn.execute(select(targets.c.name, targets.c.failures_in_a_row, targets.c.last_check_at)
                       .where(targets.c.name == name)).mappings().first()
    return {**row, "kind": "http", "target_url": name, "in_file": False} if row is not None else None


def active_alerts(conn: Connection) -> dict[str, dict]:
    """Every OPEN or ACK alert, by target name (at most one each: the database refuses a second)."""
    query = select(*_ALERT_COLUMNS).where(alerts.c.status.in_(ACTIVE_STATUSES))
    return {row["target"]: dict(row) for row in conn.execute(query).mappings()}


def uptime_counts(conn: Connection, from_hours: dict[str, str]) -> tuple[int, dict[str, dict[str, tuple[int, int]]]]:
    """The rollup watermark and, per target and window, (checks, failures) from rollups, read in one statement.

    `from_hours` maps a window's name to its first hour; the oldest bounds the scan.
    """
    sums = []
    for window, hour in from_hours.items():
        recent = rollups.c.hour >= hour
        sums += [func.sum(case((recent, rollups.c.checks), else_=0)).label(f"c_{window}"),
                 func.sum(case((recent, rollups.c.failures), else_=0)).label(f"f_{window}")]
    # One statement with the watermark, as store.rollups_since does: on PostgreSQL (a snapshot per
    # statement) the events above it are exactly those the sums do not count.
    joined = rollup_progress.outerjoin(rollups, rollups.c.hour >= min(from_hours.values()))
    query = (select(rollup_progress.c.last_event_id, rollups.c.target, *sums).select_from(joined)
             .where(rollup_progress.c.id == 1).group_by(rollup_progress.c.last_event_id, rollups.c.target))
    rows = conn.execute(query).mappings().all()
    counts = {row["target"]: {w: (row[f"c_{w}"] or 0, row[f"f_{w}"] or 0) for w in from_hours}
              for row in rows if row["target"] is not None}
    return rows[0]["last_event_id"], counts


def hourly_response_ms(conn: Connection, from_hour: str) -> dict[str, list[tuple[str, float]]]:
    """Per target, the mean response time of each rolled-up hour from `from_hour` on, oldest first."""
    query = (select(rollups.c.target, rollups.c.hour, rollups.c.response_ms_sum, rollups.c.response_ms_count)
             .where(rollups.c.hour >= from_hour, rollups.c.response_ms_count > 0)
             .order_by(rollups.c.target, rollups.c.hour))
    means: dict[str, list[tuple[str, float]]] = {}
    for row in conn.execute(query):
        means.setdefault(row.target, []).append((row.hour, row.response_ms_sum / row.response_ms_count))
    return means


def recent_checks(conn: Connection, name: str, target_url: str | None, limit: int) -> list[dict]:
    """A target's newest checks, newest first."""
    query = (select(events.c.id, events.c.timestamp, events.c.checked_at, events.c.is_success, events.c.failed,
                    events.c.status_code, events.c.response_time_ms, events.c.error_message, events.c.agent)
             .where(STATS_KEY == name).order_by(events.c.checked_at.desc()).limit(limit))
    if target_url is not None:  # the (target_url, checked_at) index finds them
        query = query.where(events.c.target_url == target_url)
    return [dict(row) for row in conn.execute(query).mappings()]


def delivery_attempts(conn: Connection, name: str, limit: int) -> list[dict]:
    """The newest delivery attempts (notification_logs rows) for a target's alerts, newest first."""
    query = (select(notification_logs, alerts.c.alert_type)
             .select_from(notification_logs.join(alerts, alerts.c.id == notification_logs.c.alert_id))
             .where(alerts.c.target == name).order_by(notification_logs.c.id.desc()).limit(limit))
    return [dict(row) for row in conn.execute(query).mappings()]


