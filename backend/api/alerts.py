"""GET /alerts, GET /alerts/<id>, PATCH /alerts/<id> (SPEC §4)."""

from flask import Blueprint, current_app, jsonify, request

from backend import store
from backend.api import json_body, require_api_key
from backend.errors import ApiError
from backend.validation import parse_page, parse_status_change, parse_status_filter, parse_target_filter

bp = Blueprint("alerts", __name__)
bp.before_request(require_api_key)

MAX_ID = 2**63 - 1  # the largest id any database column here can hold


def _find_alert(conn, alert_id: int) -> dict:
    alert = store.get_alert(conn, alert_id) if alert_id <= MAX_ID else None
    if alert is None:
        raise ApiError(404, f"Alert {alert_id} does not exist.")
    return alert


@bp.get("/alerts")
def list_alerts():
    """Alerts newest first, filtered by ?status=, ?target= (name) and ?target_url=, paged by ?limit= and ?offset=."""
    status = parse_status_filter(request.args.get("status"))
    target_url = parse_target_filter(request.args.get("target_url"))
    target = parse_target_filter(request.args.get("target"), "target")
    limit, offset = parse_page(request.args)
    with current_app.extensions["outage"].engine.connect() as conn:
        alerts = store.list_alerts(conn, status, target_url, limit, offset, target=target)
    return jsonify({"alerts": alerts, "limit": limit, "offset": offset})


@bp.get("/alerts/<int:alert_id>")
def get_alert(alert_id: int):
    """One alert with every delivery attempt under "notifications"."""
    with current_app.extensions["outage"].engine.connect() as conn:
        alert = _find_alert(conn, alert_id)
        alert["notifications"] = store.notification_logs_for(conn, alert_id)
    return jsonify(alert)


@bp.patch("/alerts/<int:alert_id>")
def change_alert(alert_id: int):
    """Acknowledge or resolve an alert: {"status": "ACK"} or {"status": "RESOLVED"}, optionally "by": "cli"."""
    requested, by = parse_status_change(json_body())
    if alert_id > MAX_ID:
        raise ApiError(404, f"Alert {alert_id} does not exist.")
    alert = current_app.extensions["outage"].service.change_alert_status(alert_id, requested, by)
    return jsonify(alert)
