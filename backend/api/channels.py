"""GET /channels and POST /channels/<name>/test (SPEC §10): the configured channels, secrets never shown."""

from flask import Blueprint, current_app, jsonify

from backend.api import require_api_key
from backend.channel_test import send_test
from backend.channels import public_channel
from backend.errors import ApiError

bp = Blueprint("channels", __name__)
bp.before_request(require_api_key)


@bp.get("/channels")
def list_channels():
    """The default channels that are on, then the targets file's named channels, secrets as `<redacted>`."""
    defaults, named = current_app.extensions["outage"].channels.configured()
    shown = [{"name": n.channel.lower(), "type": n.channel.lower()} for n in defaults]
    shown += [public_channel(name, spec) for name, spec in named.items()]
    return jsonify({"channels": shown})


@bp.post("/channels/<name>/test")
def test_channel(name: str):
    """Send a test notice through one channel now; answer the attempt's notification_logs row."""
    ctx = current_app.extensions["outage"]
    notifier = ctx.channels.notifier(name)
    if notifier is None:
        defaults, named = ctx.channels.configured()
        known = [n.channel.lower() for n in defaults] + list(named)
        raise ApiError(404, f"No channel is named {name!r}; configured: {', '.join(known)}.",
                       details={"channels": known})
    row = send_test(ctx.engine, notifier)
    return jsonify({"channel": row["channel"], "notice_type": row["notice_type"], "status": row["status"],
                    "response_code": row.get("response_code"), "message_id": row.get("message_id"),
                    "error_message": row.get("error_message"), "attempted_at": row["attempted_at"],
                    "log_id": row["id"]}), 201 if row["status"] == "SENT" else 200
