"""GET /metrics: Prometheus text format (SPEC §12); METRICS_TOKEN as a bearer token when set, never the API key."""

import hmac

from flask import Blueprint, Response, current_app, request

from backend import metrics
from backend.errors import ApiError

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape():
    """Every worker's counters added up, and the outbox read now."""
    ctx = current_app.extensions["outage"]
    token = ctx.settings.metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Compared in constant time; neither value goes into the answer or the log.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(401, "GET /metrics needs the header Authorization: Bearer <METRICS_TOKEN>.")
    # The file's named channels too, built here or not: each gets its gauges, 0 when nothing waits.
    configured = [n.channel for n in ctx.dispatcher.notifiers] + list(ctx.channels.configured()[1])
    body, content_type = metrics.exposition(ctx.engine, configured, request.headers.get("Accept"))
    return Response(body, content_type=content_type)
