"""GET /health: 200 when the database answers, 503 otherwise; needs no API key (SPEC §4)."""

import logging

from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from backend import store

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
        return jsonify({"status": "unavailable", "error": "The database does not answer."}), 503
    return jsonify({"status": "ok"})
