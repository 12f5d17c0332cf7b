"""GET /agents: each agent by name, with when it was last heard from (SPEC §8)."""

from flask import Blueprint, current_app, jsonify, request

from backend import store
from backend.api import require_api_key
from backend.validation import parse_page

bp = Blueprint("agents", __name__)
bp.before_request(require_api_key)


@bp.get("/agents")
def list_agents():
    """Agents, the most recently heard from first, paged by ?limit= and ?offset=."""
    limit, offset = parse_page(request.args)
    with current_app.extensions["outage"].engine.connect() as conn:
        agents = store.list_agents(conn, limit, offset)
    return jsonify({"agents": agents, "limit": limit, "offset": offset})
