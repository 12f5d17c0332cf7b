"""POST /events: store check results, apply the alert rules, queue notifications (SPEC §4, §5)."""

from flask import Blueprint, current_app, jsonify

from backend.api import json_body, require_api_key
from backend.validation import parse_events

bp = Blueprint("events", __name__)
bp.before_request(require_api_key)


@bp.post("/events")
def create_events():
    """Validate the whole body first, then store it in one transaction, then hand off notices."""
    body = json_body()
    new_events = parse_events(body)
    ctx = current_app.extensions["outage"]
    recorded, notices = ctx.service.record_events(new_events)
    ctx.dispatcher.submit(notices)  # delivery happens on the dispatcher's threads, not here
    results = [{"event_id": r.event_id, "alert": r.alert} for r in recorded]
    return jsonify(results[0] if isinstance(body, dict) else {"events": results}), 201
