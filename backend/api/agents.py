"""GET /agents: each agent by name, with when it was last heard from (SPEC §8)."""

from flask import Blueprint, current_app, jsonify, request

from backend import store
from backend.api import require_api_key
from backend.validation import parse_query_int

bp = Blueprint("agents", __name__)
bp.before_request(require_api_key)

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_OFFSET = 2**63 - 1


@bp.get("/agents")
def list_agents():
    """Agents, the most recently heard from first, paged by ?limit= and ?offset=."""
    limit = parse_query_int(request.args.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = parse_query_int(request.args.get("offset"), "offset", 0, 0, MAX_OFFSET)
    with current_app.extensions["outage"].engine.connect() as conn:
        agents = store.list_agents(conn, limit, offset)
    return jsonify({"agents": agents, "limit": limit, "offset": offset})
