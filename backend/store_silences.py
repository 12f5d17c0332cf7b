"""The SQL of silences, maintenance windows, paused targets and suppressed notices (SPEC §11)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from backend.database import (alerts, file_targets, maintenance_windows, notification_logs, paused_targets, silences,
                              targets, targets_file)
from backend.time_text import check_time_text, precise_text, utc_text


def insert_silence(conn: Connection, row: dict) -> dict:
    """Store a new silence; return it as stored."""
    silence_id = conn.execute(insert(silences).values(**row)).inserted_primary_key[0]
    return get_silence(conn, silence_id)


def get_silence(conn: Connection, silence_id: int) -> dict | None:
    """One silence by id, or None."""
    row = conn.execute(select(silences).where(silences.c.id == silence_id)).mappings().first()
    return dict(row) if row else None


def list_silences(conn: Connection, now: str, include_ended: bool, limit: int, offset: int) -> list[dict]:
    """Silences not yet ended, soonest start first; with `include_ended`, every one, newest first."""
    query = select(silences)
    if include_ended:
        query = query.order_by(silences.c.id.desc())
    else:
        query = query.where(silences.c.ends_at > now).order_by(silences.c.starts_at, silences.c.id)
    return [dict(row) for row in conn.execute(query.limit(limit).offset(offset)).mappings()]


def end_silence(conn: Connection, silence_id: int, now: str) -> bool:
    """End a silence now (DELETE /silences/<id>), the row kept; its suppressed notices become due now.

    Conditional: a silence already over changes nothing (False).
    """
    changed = conn.execute(update(silences).where(silences.c.id == silence_id, silences.c.ends_at > now).values(
        ends_at=now, ended_early_at=now, starts_at=func.min(silences.c.starts_at, now)
        if conn.dialect.name == "sqlite" else func.least(silences.c.starts_at, now))).rowcount
    if changed:
        conn.execute(update(notification_logs).where(notification_logs.c.silence_id == silence_id,
                                                     notification_logs.c.release_at.is_not(None))
                     .values(release_at=now))
    return bool(changed)


# Built once: these run for every notice ingest queues (silences.silence_for), inside its transaction.
_IN_FORCE = select(silences).where(silences.c.starts_at <= bindparam("now"), silences.c.ends_at > bindparam("now"))
_MAINTENANCE = select(maintenance_windows).order_by(maintenance_windows.c.position)


def silences_in_force(conn: Connection, now: str) -> list[dict]:
    """The silences in force at `now` (started, not ended)."""
    return [dict(row) for row in conn.execute(_IN_FORCE, {"now": now}).mappings()]


def maintenance_rows(conn: Connection) -> list[dict]:
    """The targets file's maintenance windows as loaded: position and spec (JSON text)."""
    return [dict(row) for row in conn.execute(_MAINTENANCE).mappings()]


def save_maintenance(conn: Connection, specs: list[str]) -> None:
    """Replace the loaded maintenance windows with the file's (inside the load's transaction)."""
    conn.execute(delete(maintenance_windows))
    if specs:
        conn.execute(insert(maintenance_windows), [{"position": i, "spec": spec} for i, spec in enumerate(specs)])


def release_maintenance_suppressed(conn: Connection, now: str) -> int:
    """Make the notices held by maintenance windows due now (the loaded windows changed); how many.

    The silence-end pass then asks again, and holds again whatever a window still covers.
    """
    return conn.execute(update(notification_logs).where(notification_logs.c.silence_id.is_(None),
                                                        notification_logs.c.release_at > now)
                        .values(release_at=now)).rowcount


def target_tags(conn: Connection, name: str) -> tuple[str, ...]:
    """A file target's tags; () for a target not in the file."""
    spec = conn.execute(select(file_targets.c.spec).where(file_targets.c.name == name)).scalar_one_or_none()
    return tuple(json.loads(spec).get("tags") or ()) if spec else ()


def insert_suppressed(conn: Connection, rows: list[dict]) -> None:
    """notification_logs rows with status SUPPRESSED: a notice not sent, and why (SPEC §11)."""
    if rows:
        conn.execute(insert(notification_logs), rows)


def due_suppressed(conn: Connection, now: str, limit: int = 500) -> list[dict]:
    """Suppressed notices whose silence or window has ended: id, alert, channel, notice type, the alert's state
    (as read without a lock: lock_alert_status reads it again before acting)."""
    query = (select(notification_logs.c.id, notification_logs.c.alert_id, notification_logs.c.channel,
                    notification_logs.c.notice_type, alerts.c.status.label("alert_status"), alerts.c.target,
                    alerts.c.event_id)
             .select_from(notification_logs.join(alerts, alerts.c.id == notification_logs.c.alert_id))
             .where(notification_logs.c.release_at <= now).order_by(notification_logs.c.id).limit(limit))
    return [dict(row) for row in conn.execute(query).mappings()]


def lock_alert_status(conn: Connection, alert_id: int) -> str | None:
    """The alert's status, its row locked until the transaction ends (PostgreSQL: the latest committed one)."""
    return conn.execute(select(alerts.c.status).where(alerts.c.id == alert_id).with_for_update()).scalar()


def claim_suppressed(conn: Connection, log_id: int) -> bool:
    """Take a due suppressed notice for handling, once across processes (conditional UPDATE)."""
    return bool(conn.execute(update(notification_logs).where(notification_logs.c.id == log_id,
                                                             notification_logs.c.release_at.is_not(None))
                             .values(release_at=None)).rowcount)


def paused_names(conn: Connection) -> set[str]:
    """The names of the paused targets."""
    return set(conn.execute(select(paused_targets.c.name)).scalars())


def set_paused(conn: Connection, name: str, paused: bool, now: datetime) -> bool:
    """Pause or resume a target; True when that changed anything. Lock order: the targets file row first."""
    conn.execute(select(targets_file.c.id).where(targets_file.c.id == 1).with_for_update())
    was = conn.execute(select(paused_targets.c.name).where(paused_targets.c.name == name)).first() is not None
    if was == paused:
        return False
    if paused:
        conn.execute(insert(paused_targets).values(name=name, paused_at=utc_text(now)))
    else:
        conn.execute(delete(paused_targets).where(paused_targets.c.name == name))
        # Its deadline counts from now: the time it was paused is no silence (SPEC §8 deadlines). No
        # writer of rule state runs meanwhile: each holds the targets file row, locked above.
        heard = check_time_text(now)
        if not conn.execute(update(targets).where(targets.c.name == name).values(last_received_at=heard)).rowcount:
            conn.execute(insert(targets).values(name=name, failures_in_a_row=0, last_received_at=heard))
    # The rule caches of every process are keyed on this row: they read the pauses again.
    conn.execute(update(targets_file).where(targets_file.c.id == 1).values(pauses_changed_at=precise_text(now)))
    return True


def is_file_target(conn: Connection, name: str) -> bool:
    """Whether the loaded targets file has a target of this name."""
    return conn.execute(select(file_targets.c.name).where(file_targets.c.name == name)).first() is not None
