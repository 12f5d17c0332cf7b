"""Reads of the outbox (`deliveries`) for the metrics scrape; taking a Connection like store.py."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection, func, select

from backend.database import deliveries


def pending_by_channel(conn: Connection, channels: list[str]) -> dict[str, tuple[int, datetime]]:
    """Per channel with notices waiting: how many, and when the oldest was queued (UTC)."""
    if not channels:
        return {}
    # (channel, status, id) is indexed, and PENDING rows are few: no scan of the delivered ones.
    query = (select(deliveries.c.channel, func.count(), func.min(deliveries.c.created_at))
             .where(deliveries.c.channel.in_(channels), deliveries.c.status == "PENDING")
             .group_by(deliveries.c.channel))
    return {channel: (count, datetime.fromisoformat(oldest).replace(tzinfo=timezone.utc))
            for channel, count, oldest in conn.execute(query)}
