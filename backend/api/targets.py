"""GET /targets, GET /targets/<name>/stats, POST /targets/reload, GET /agent/targets: the targets list (SPEC §8)."""

from flask import Blueprint, current_app, jsonify, request

from backend import stats
from backend.api import require_api_key
from backend.errors import INVALID_TARGETS_FILE, ApiError
from backend.targets_file import TargetsFileError
from backend.validation import parse_agent_header, parse_page, parse_target_name

bp = Blueprint("targets", __name__)
bp.before_request(require_api_key)


@bp.get("/targets")
def list_targets():
    """The loaded targets in file order with their state, paged by ?limit= and ?offset=; no secret."""
    limit, offset = parse_page(request.args)
    return jsonify(current_app.extensions["outage"].targets.page(limit, offset, request.url_root))


# merge_slashes off: a name may hold "//" (a URL) and is taken whole, percent-encoded or not (SPEC §8).
@bp.get("/targets/<path:name>/stats", merge_slashes=False)
def target_stats(name: str):
    """A target's checks, failures, uptime and response times over ?window=24h|7d|30d (SPEC §8)."""
    window = stats.parse_window(request.args.get("window"))
    return jsonify(stats.target_stats(current_app.extensions["outage"].engine, parse_target_name(name), window))


@bp.post("/targets/reload")
def reload_targets():
    """Re-read the targets file; an invalid one is refused (400) and the running list stays."""
    try:
        summary = current_app.extensions["outage"].targets.reload("reloaded by POST /targets/reload")
    except TargetsFileError as exc:
        raise ApiError(400, str(exc), details={"code": INVALID_TARGETS_FILE}) from None
    return jsonify(summary.as_dict())


@bp.get("/agent/targets")
def agent_targets():
    """What agents check: http and tcp targets with their secrets resolved, and how often to ask again."""
    ctx = current_app.extensions["outage"]
    name = parse_agent_header(request.headers.get("X-Agent-Name"))
    if name is not None:  # an agent from before X-Agent-Name is served, just not listed
        ctx.service.agent_pulled(name)
    return jsonify(ctx.targets.agent_targets())
