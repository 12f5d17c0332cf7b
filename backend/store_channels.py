"""The targets file's named channels (SPEC §10), kept on its `targets_file` row so every process reads the same."""

from __future__ import annotations

import json

from sqlalchemy import Connection, select, update

from backend.database import targets_file


def save_channels(conn: Connection, channels: dict[str, dict]) -> None:
    """Record the loaded file's channels (`${NAME}` unresolved), in the transaction that records its fingerprint."""
    text = json.dumps(channels, ensure_ascii=False, sort_keys=True) if channels else None
    conn.execute(update(targets_file).where(targets_file.c.id == 1).values(channels=text))


def loaded_channels(conn: Connection) -> tuple[str | None, dict[str, dict]]:
    """The loaded file's fingerprint and its named channels, by name (none before the first load)."""
    row = conn.execute(select(targets_file.c.fingerprint, targets_file.c.channels)
                       .where(targets_file.c.id == 1)).first()
    if row is None:
        return None, {}
    return row.fingerprint, json.loads(row.channels) if row.channels else {}
