"""GET /health (200 when the database answers, 503 otherwise) and GET /openapi.json; no API key."""

import logging

from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from backend import store
from backend.openapi import openapi_document

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/health")
def health():
    """Ask the database a trivial question."""
    try:
        with current_app.extensions["outage"].engine.connect() as conn:
            store.ping(conn)
    except SQLAlchemyError as exc:
        log.warning("health check: database unavailable: %s", exc.__class__.__name__)
        return jsonify({"status": "unavailable", "error": "The database does not answer.", "details": {}}), 503
    return jsonify({"status": "ok"})


@bp.get("/openapi.json")
def openapi():
    """The API's OpenAPI 3.1 document; public, like /health."""
    return jsonify(openapi_document())
