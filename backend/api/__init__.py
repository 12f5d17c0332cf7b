"""HTTP API blueprints (SPEC §4) and the request helpers they share."""

from __future__ import annotations

import hmac
from typing import Any

from flask import current_app, request

from backend.errors import INVALID_REQUEST, ApiError


def require_api_key() -> None:
    """Refuse a request without the right X-API-Key header (compared in constant time)."""
    given = request.headers.get("X-API-Key", "")
    expected = current_app.extensions["outage"].settings.api_key
    if not given:
        raise ApiError(401, "The X-API-Key header is missing.")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(401, "The X-API-Key header is wrong.")


def json_body() -> Any:
    """The request's JSON body (`null` included), or ApiError 415 (not JSON) / 400 (malformed)."""
    if not request.is_json:
        raise ApiError(415, "The body must be JSON, sent with Content-Type: application/json.")
    # Parsed here rather than by request.get_json, whose None means both "malformed" and `null`.
    data = request.get_data(cache=True)  # a body over MAX_CONTENT_LENGTH raises 413 here
    try:
        return current_app.json.loads(data)
    except (ValueError, RecursionError):  # also invalid UTF-8, and absurdly deep nesting
        raise ApiError(400, "The body is not valid JSON.", details={"code": INVALID_REQUEST}) from None
