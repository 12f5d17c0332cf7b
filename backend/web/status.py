"""GET /status: the public status page (SPEC §12), no login, on only with STATUS_PAGE=on; cached for 30 s."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

from flask import Blueprint, abort, current_app, render_template

from backend.stats import FleetStats
from backend.status_page import public_status

CACHE_SECONDS = 30  # browsers and proxies may keep it this long; each process recomputes it at most this often

bp = Blueprint("status", __name__, template_folder="templates")


class _Kept:
    """The last page a process rendered, and when: a public page must not cost a fleet scan per visitor."""

    def __init__(self):
        self.lock = threading.Lock()
        self.page: tuple[float, str] | None = None


@bp.record_once
def _setup(state) -> None:
    state.app.extensions["status_page"] = _Kept()
    state.app.extensions["status_fleet"] = FleetStats()


@bp.get("/status")
def status():
    """The public targets' state, uptime over 24 h / 7 d / 30 d and a 30-day bar of daily uptime."""
    ctx = current_app.extensions["outage"]
    if not ctx.settings.status_page:
        abort(404)
    kept = current_app.extensions["status_page"]
    with kept.lock:  # one visitor computes it; the others wait a moment and get the same page
        if kept.page is None or time.monotonic() - kept.page[0] >= CACHE_SECONDS:
            now = datetime.now(timezone.utc)
            targets = public_status(ctx.engine, current_app.extensions["status_fleet"], now)
            kept.page = (time.monotonic(), render_template("status.html", targets=targets,
                                                           updated=now.strftime("%Y-%m-%d %H:%M UTC")))
        page = kept.page[1]
    return page, 200, {"Cache-Control": f"public, max-age={CACHE_SECONDS}"}
