"""SQL of two-way Telegram (SPEC §10): the stored getUpdates offset and the sent message a press must match."""

from __future__ import annotations

from sqlalchemy import Connection, exists, select, update

from backend.database import notification_logs, telegram_offset


def next_update_id(conn: Connection) -> int:
    """The offset to ask getUpdates for: every update below it has been applied."""
    return conn.execute(select(telegram_offset.c.next_update_id).where(telegram_offset.c.id == 1)).scalar_one()


def claim_update(conn: Connection, update_id: int) -> bool:
    """Move the offset past `update_id` if no process has yet; True for the one transaction that applies it."""
    moved = conn.execute(update(telegram_offset).where(
        telegram_offset.c.id == 1, telegram_offset.c.next_update_id <= update_id,
    ).values(next_update_id=update_id + 1))
    return moved.rowcount == 1


def was_sent_to(conn: Connection, alert_id: int, chat_id: str, message_id: str) -> bool:
    """Whether a SENT delivery of this alert is this very message in this very chat (any Telegram channel)."""
    logs = notification_logs.c
    return conn.execute(select(exists().where(
        logs.alert_id == alert_id, logs.status == "SENT", logs.chat_id == chat_id,
        logs.message_id == message_id))).scalar()
