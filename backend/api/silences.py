"""POST /silences, GET /silences, DELETE /silences/<id> (SPEC §11)."""

from datetime import datetime, timezone

from flask import Blueprint, current_app, jsonify, request

from backend import store, store_silences
from backend.api import json_body, require_api_key
from backend.api.alerts import MAX_ID
from backend.database import write_transaction
from backend.errors import ApiError
from backend.silences import parse_new_silence, silence_view
from backend.validation import parse_page

bp = Blueprint("silences", __name__)
bp.before_request(require_api_key)


@bp.post("/silences")
def create_silence():
    """Silence the targets `match` selects from starts_at (default now) until ends_at: notices are suppressed."""
    now = datetime.now(timezone.utc)
    row = parse_new_silence(json_body(), now)
    with write_transaction(current_app.extensions["outage"].engine) as conn:
        silence = store_silences.insert_silence(conn, row)
    return jsonify(silence_view(silence, now)), 201


@bp.get("/silences")
def list_silences():
    """Silences active and upcoming, soonest first; ?all=true lists ended ones too, newest first."""
    include_ended = request.args.get("all", "").lower() in ("1", "true", "yes")
    limit, offset = parse_page(request.args)
    now = datetime.now(timezone.utc)
    with current_app.extensions["outage"].engine.connect() as conn:
        rows = store_silences.list_silences(conn, store.precise_text(now), include_ended, limit, offset)
    return jsonify({"silences": [silence_view(row, now) for row in rows], "limit": limit, "offset": offset})


@bp.delete("/silences/<int:silence_id>")
def end_silence(silence_id: int):
    """End a silence now (its row stays, for the log rows that name it); an ended one is answered as it is."""
    now = datetime.now(timezone.utc)
    with write_transaction(current_app.extensions["outage"].engine) as conn:
        silence = store_silences.get_silence(conn, silence_id) if silence_id <= MAX_ID else None
        if silence is None:
            raise ApiError(404, f"Silence {silence_id} does not exist.")
        if store_silences.end_silence(conn, silence_id, store.precise_text(now)):
            silence = store_silences.get_silence(conn, silence_id)
    return jsonify(silence_view(silence, now))
