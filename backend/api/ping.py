"""GET or POST /ping/<token> and /ping/<token>/fail: cron jobs report to their push target (SPEC §9); no API key."""

from flask import Blueprint, current_app, jsonify, request

from backend import metrics
from backend.errors import ApiError
from backend.ping_tokens import is_token_shaped
from backend.push import MAX_FAIL_BODY, fail_message, record_ping

bp = Blueprint("ping", __name__)


@metrics.INGEST_SECONDS.labels("ping").time()
def _record(token: str, failure: str | None):
    ctx = current_app.extensions["outage"]
    # A NUL (which PostgreSQL refuses in text) or an over-long path is no token: not looked up at all.
    recorded = record_ping(ctx.service, token, failure) if is_token_shaped(token) else None
    if recorded is None:
        raise ApiError(404, "No push target has this ping URL; GET /targets shows each push target's ping_url.")
    metrics.events_received(0 if failure is None else 1, 1)
    if recorded.alert:  # outbox rows were committed: deliver now, not at the next poll
        ctx.dispatcher.wake()
    return jsonify({"ok": True})


@bp.route("/ping/<token>", methods=["GET", "POST"])
def ping(token: str):
    """The job ran: a successful event for the push target with this token."""
    return _record(token, None)


@bp.route("/ping/<token>/fail", methods=["GET", "POST"])
def ping_fail(token: str):
    """The job failed: a failed event, which opens an ERROR at once; the body (optional) is its message."""
    return _record(token, fail_message(request.stream.read(MAX_FAIL_BODY)))
