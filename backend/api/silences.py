"""POST /silences, GET /silences, DELETE /silences/<id> (SPEC §11)."""

from datetime import datetime, timezone

from flask import Blueprint, current_app, jsonify, request

from backend import silence_service
from backend.api import json_body, require_api_key
from backend.validation import parse_page

bp = Blueprint("silences", __name__)
bp.before_request(require_api_key)


@bp.post("/silences")
def create_silence():
    """Silence the targets `match` selects from starts_at (default now) until ends_at: notices are suppressed."""
    engine = current_app.extensions["outage"].engine
    return jsonify(silence_service.add_silence(engine, json_body(), datetime.now(timezone.utc))), 201


@bp.get("/silences")
def list_silences():
    """Silences active and upcoming, soonest first; ?all=true lists ended ones too, newest first."""
    include_ended = request.args.get("all", "").lower() in ("1", "true", "yes")
    limit, offset = parse_page(request.args)
    shown = silence_service.list_silences(current_app.extensions["outage"].engine, datetime.now(timezone.utc),
                                          include_ended, limit, offset)
    return jsonify({"silences": shown, "limit": limit, "offset": offset})


@bp.delete("/silences/<int:silence_id>")
def end_silence(silence_id: int):
    """End a silence now (its row stays, for the log rows that name it); an ended one is answered as it is."""
    engine = current_app.extensions["outage"].engine
    return jsonify(silence_service.end_silence(engine, silence_id, datetime.now(timezone.utc)))
