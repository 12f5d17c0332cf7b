"""PATCH /targets/<name> {"paused": true|false}: stop and resume checking a target (SPEC §11)."""

from datetime import datetime, timezone

from flask import Blueprint, current_app, jsonify

from backend import silence_service
from backend.api import json_body, require_api_key
from backend.errors import INVALID_REQUEST, ApiError

bp = Blueprint("paused", __name__)
bp.before_request(require_api_key)


# merge_slashes off: a name may hold "//" and is taken whole, as GET /targets/<name>/stats takes it.
@bp.patch("/targets/<path:name>", merge_slashes=False)
def pause_target(name: str):
    """Pause or resume a target: paused, it is not checked, nor watched, and its events open no alert."""
    body = json_body()
    if not isinstance(body, dict) or set(body) != {"paused"} or not isinstance(body["paused"], bool):
        raise ApiError(400, 'The body must be {"paused": true} or {"paused": false}.',
                       details={"code": INVALID_REQUEST, "field": "paused"})
    silence_service.set_paused(current_app.extensions["outage"].engine, name, body["paused"],
                               datetime.now(timezone.utc))
    return jsonify({"name": name, "paused": body["paused"]})
