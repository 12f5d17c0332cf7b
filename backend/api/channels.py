"""GET /channels and POST /channels/<name>/test (SPEC §10): the configured channels, secrets never shown."""

from flask import Blueprint, current_app, jsonify

from backend.api import require_api_key
from backend.channel_test import channel_list, run_channel_test

bp = Blueprint("channels", __name__)
bp.before_request(require_api_key)


@bp.get("/channels")
def list_channels():
    """The default channels that are on, then the targets file's named channels, secrets as `<redacted>`."""
    return jsonify({"channels": channel_list(current_app.extensions["outage"].channels)})


@bp.post("/channels/<name>/test")
def test_channel(name: str):
    """Send a test notice through one channel now; answer the attempt's notification_logs row."""
    ctx = current_app.extensions["outage"]
    row = run_channel_test(ctx.engine, ctx.channels, name)
    return jsonify({"channel": row["channel"], "notice_type": row["notice_type"], "status": row["status"],
                    "response_code": row.get("response_code"), "message_id": row.get("message_id"),
                    "error_message": row.get("error_message"), "attempted_at": row["attempted_at"],
                    "log_id": row["id"]}), 201 if row["status"] == "SENT" else 200
