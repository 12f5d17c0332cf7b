"""API errors: one exception type and the handlers that render every error as JSON (SPEC §4)."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from backend.database import DatabaseBusyError
from backend.ping_tokens import redact_ping_paths

log = logging.getLogger(__name__)

# Our own sentences for Flask's errors, so every error body reads the same way.
_HTTP_MESSAGES = {
    404: "No such resource.",
    405: "That method is not allowed on this resource.",
    413: "The request body is too large.",
}


# details.code of a 400 from POST /events (SPEC §4). The agent drops a spooled event only on
# INVALID_EVENT; on any other code it keeps the event and retries, so only a problem that no
# retry and no newer backend can cure may be INVALID_EVENT.
INVALID_REQUEST = "invalid_request"  # the request as a whole: malformed JSON, not an event or array, batch size
INVALID_EVENT = "invalid_event"      # this event can never be stored
UNKNOWN_FIELD = "unknown_field"      # a field this backend does not know (a newer agent)
CLOCK_SKEW = "clock_skew"            # a timestamp ahead of the backend's clock
INVALID_TARGETS_FILE = "invalid_targets_file"  # POST /targets/reload: the file was refused, the list stays


class ApiError(Exception):
    """A request we refuse: HTTP status, one readable sentence, optional details."""

    def __init__(self, status: int, message: str, details: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or {}


def error_response(status: int, message: str, details: dict | None = None):
    """The JSON body and status of every error answer: always both keys, details possibly empty."""
    return jsonify({"error": message, "details": details or {}}), status


def _path() -> str:
    """The request's path as logs show it: a push target's ping token written as <token>."""
    return redact_ping_paths(request.path)


def register_error_handlers(app: Flask) -> None:
    """Render ApiError, Flask's HTTP errors and unexpected failures as JSON."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        log.warning("%s %s -> %d: %s", request.method, _path(), exc.status, exc.message)
        return error_response(exc.status, exc.message, exc.details)

    @app.errorhandler(DatabaseBusyError)
    def _database_busy(exc: DatabaseBusyError):
        log.warning("%s %s -> 503: %s", request.method, _path(), exc)
        return error_response(503, "The database is busy with another writer; nothing was stored, try again.")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        log.warning("%s %s -> %d", request.method, _path(), status)
        return error_response(status, _HTTP_MESSAGES.get(status, f"{exc.name}."))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error while serving a request")
        return error_response(500, "Internal server error; nothing was stored.")
