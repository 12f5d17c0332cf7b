"""Every SQL statement the backend runs: small functions over a Connection, portable SQL only."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection, func, insert, select, update

from backend.database import alerts, events, notification_logs
from backend.rules import ACTIVE_STATUSES

def utc_text(moment: datetime) -> str:
    """The one stored form of a time: UTC as YYYY-MM-DD HH:MM:SS (SPEC §3)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    # isoformat, not strftime: strftime("%Y") does not zero-pad years before 1000 on glibc.
    return moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")


def now_text() -> str:
    """The current time in the stored form."""
    return utc_text(datetime.now(timezone.utc))


def insert_event(conn: Connection, row: dict) -> int:
    """Store one check result and return its id."""
    return conn.execute(insert(events).values(**row)).inserted_primary_key[0]


def recent_results(conn: Connection, target_url: str, limit: int) -> list[tuple[bool, int | None]]:
    """The target's latest `limit` results, newest first, as (is_success, status_code)."""
    rows = conn.execute(
        select(events.c.is_success, events.c.status_code)
        .where(events.c.target_url == target_url)
        .order_by(events.c.id.desc())
        .limit(limit)
    )
    return [(bool(r.is_success), r.status_code) for r in rows]


def active_alert_id(conn: Connection, target_url: str) -> int | None:
    """The id of the target's OPEN or ACK alert, if it has one."""
    return conn.execute(
        select(alerts.c.id).where(alerts.c.target_url == target_url, alerts.c.status.in_(ACTIVE_STATUSES))
    ).scalar()


def insert_alert(conn: Connection, row: dict) -> int:
    """Store a new alert and return its id."""
    return conn.execute(insert(alerts).values(**row)).inserted_primary_key[0]


def set_alert_status(conn: Connection, alert_id: int, from_statuses: tuple[str, ...], values: dict) -> bool:
    """Change an alert only if it is still in one of `from_statuses`; True when a row changed."""
    result = conn.execute(
        update(alerts).where(alerts.c.id == alert_id, alerts.c.status.in_(from_statuses)).values(**values)
    )
    return result.rowcount == 1


def get_alert(conn: Connection, alert_id: int) -> dict | None:
    """One alert as a dict, or None."""
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).mappings().first()
    return dict(row) if row else None


def list_alerts(conn: Connection, status: str | None, target_url: str | None, limit: int,
                offset: int) -> list[dict]:
    """Alerts newest first, optionally filtered by status and target (SPEC §4)."""
    query = select(alerts).order_by(alerts.c.id.desc()).limit(limit).offset(offset)
    if status:
        query = query.where(alerts.c.status == status)
    if target_url:
        query = query.where(alerts.c.target_url == target_url)
    return [dict(row) for row in conn.execute(query).mappings()]


def count_alerts(conn: Connection, status: str | None, target_url: str | None) -> int:
    """How many alerts match the same filters as list_alerts."""
    query = select(func.count()).select_from(alerts)
    if status:
        query = query.where(alerts.c.status == status)
    if target_url:
        query = query.where(alerts.c.target_url == target_url)
    return conn.execute(query).scalar_one()


def insert_notification_log(conn: Connection, row: dict) -> int:
    """Record one delivery attempt (SPEC §3: one row per attempt)."""
    return conn.execute(insert(notification_logs).values(**row)).inserted_primary_key[0]


def notification_logs_for(conn: Connection, alert_id: int) -> list[dict]:
    """Every delivery attempt for an alert, oldest first."""
    rows = conn.execute(
        select(notification_logs).where(notification_logs.c.alert_id == alert_id).order_by(notification_logs.c.id)
    ).mappings()
    return [dict(row) for row in rows]


def ping(conn: Connection) -> None:
    """Raise if the database does not answer."""
    conn.execute(select(1)).scalar_one()
