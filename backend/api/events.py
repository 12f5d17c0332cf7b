"""POST /events: store check results once, apply the alert rules, queue notifications (SPEC §4, §5)."""

from datetime import datetime, timezone

from flask import Blueprint, current_app, jsonify

from backend import metrics
from backend.api import json_body, require_api_key
from backend.validation import parse_events

bp = Blueprint("events", __name__)
bp.before_request(require_api_key)


@bp.post("/events")
@metrics.INGEST_SECONDS.labels("events").time()
def create_events():
    """Validate the whole body first, then store it in one transaction; 200 when all were stored before."""
    body = json_body()
    ctx = current_app.extensions["outage"]
    new_events = parse_events(body, datetime.now(timezone.utc), ctx.settings.max_clock_skew_seconds)
    recorded = ctx.service.record_events(new_events)
    metrics.events_received(metrics.failures_in(new_events), len(new_events))
    if any(r.alert for r in recorded):  # outbox rows were committed: deliver now, not at the next poll
        ctx.dispatcher.wake()
    results = [{"event_id": r.event_id, "alert": r.alert, "duplicate": r.duplicate} for r in recorded]
    status = 200 if all(r.duplicate for r in recorded) else 201
    return jsonify(results[0] if isinstance(body, dict) else {"events": results}), status
