"""Silences and pauses as the API and the dashboard both change them (SPEC §11): one place for each action."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from backend import store_silences
from backend.database import write_transaction
from backend.errors import ApiError
from backend.silences import parse_new_silence, silence_view
from backend.time_text import precise_text
from backend.validation import parse_target_name

MAX_SILENCE_ID = 2**63 - 1  # larger ids exist nowhere (and PostgreSQL's bigint refuses them)


def add_silence(engine: Engine, body: Any, now: datetime) -> dict:
    """Store the silence a POST /silences body describes and return it as the API shows it; ApiError 400 if bad."""
    row = parse_new_silence(body, now)
    with write_transaction(engine) as conn:
        silence = store_silences.insert_silence(conn, row)
    return silence_view(silence, now)


def end_silence(engine: Engine, silence_id: int, now: datetime) -> dict:
    """End a silence now (its row stays); an ended one is answered as it is; ApiError 404 for an unknown id."""
    with write_transaction(engine) as conn:
        silence = store_silences.get_silence(conn, silence_id) if silence_id <= MAX_SILENCE_ID else None
        if silence is None:
            raise ApiError(404, f"Silence {silence_id} does not exist.")
        if store_silences.end_silence(conn, silence_id, precise_text(now)):
            silence = store_silences.get_silence(conn, silence_id)
    return silence_view(silence, now)


def list_silences(engine: Engine, now: datetime, include_ended: bool, limit: int, offset: int) -> list[dict]:
    """Silences active and upcoming, soonest first; with `include_ended`, every one, newest first (as shown)."""
    with engine.connect() as conn:
        rows = store_silences.list_silences(conn, precise_text(now), include_ended, limit, offset)
    return [silence_view(row, now) for row in rows]


def set_paused(engine: Engine, name: str, paused: bool, now: datetime) -> None:
    """Pause or resume a target of the targets file (SPEC §11); ApiError 404 for a name the file does not have."""
    name = parse_target_name(name)
    with write_transaction(engine) as conn:
        if not store_silences.is_file_target(conn, name):
            raise ApiError(404, f"No target named {name} in the targets file.")
        store_silences.set_paused(conn, name, paused, now)
