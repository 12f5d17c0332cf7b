"""The SQL of reminders and escalations (SPEC §11): due times on alerts, found and claimed with conditional UPDATEs."""

from __future__ import annotations

from sqlalchemy import Connection, or_, select, update

from backend.database import alerts
from backend.rules import AlertStatus

_OPEN = AlertStatus.OPEN.value
# escalate_at once the escalation is claimed: later than any time, so never due again. NULL means none was
# ever set, which a reload that turns escalation on fills in (back_fill); this one it leaves alone.
ESCALATED = "9999-12-31 23:59:59.999999"


def due_alert_timers(conn: Connection, now: str, limit: int = 500) -> list[dict]:
    """OPEN alerts whose reminder or escalation is due at `now` (ACK and RESOLVED ones are never due), oldest first."""
    query = (select(alerts.c.id, alerts.c.event_id, alerts.c.target, alerts.c.status, alerts.c.remind_at,
                    alerts.c.escalate_at)
             .where(alerts.c.status == _OPEN, or_(alerts.c.remind_at <= now, alerts.c.escalate_at <= now))
             .order_by(alerts.c.id).limit(limit))
    return [dict(row) for row in conn.execute(query).mappings()]


def claim_reminder(conn: Connection, alert_id: int, due: str, next_at: str | None) -> bool:
    """Move a due reminder to `next_at` (None: no more), if the alert is still OPEN and nobody moved it since
    it was read as `due`; True for the one caller whose UPDATE changed the row, who then queues the notice."""
    result = conn.execute(update(alerts).where(alerts.c.id == alert_id, alerts.c.status == _OPEN,
                                               alerts.c.remind_at == due).values(remind_at=next_at))
    return result.rowcount == 1


def claim_escalation(conn: Connection, alert_id: int, due: str) -> bool:
    """Clear a due escalation (it goes out once), if the alert is still OPEN and unclaimed; True for the one claimer."""
    result = conn.execute(update(alerts).where(alerts.c.id == alert_id, alerts.c.status == _OPEN,
                                               alerts.c.escalate_at == due).values(escalate_at=ESCALATED))
    return result.rowcount == 1


def open_alerts_without_timers(conn: Connection) -> list[dict]:
    """OPEN alerts with no reminder or no escalation set: id, target, when it opened, both due times."""
    query = (select(alerts.c.id, alerts.c.target, alerts.c.created_at, alerts.c.remind_at, alerts.c.escalate_at)
             .where(alerts.c.status == _OPEN, or_(alerts.c.remind_at.is_(None), alerts.c.escalate_at.is_(None)))
             .order_by(alerts.c.id))
    return [dict(row) for row in conn.execute(query).mappings()]


def fill_timers(conn: Connection, alert_id: int, remind_at: str | None, escalate_at: str | None) -> None:
    """Set an alert's missing due times; each only where it is still NULL."""
    for column, value in (("remind_at", remind_at), ("escalate_at", escalate_at)):
        if value is not None:
            conn.execute(update(alerts).where(alerts.c.id == alert_id, alerts.c[column].is_(None))
                         .values({column: value}))
