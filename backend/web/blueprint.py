"""The dashboard's blueprint (SPEC §12) and what every page of it shares: cookie and CSRF settings, the login guard.

The pages (views.py, silences_page.py, channels_page.py) add their routes to `bp`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms.validators import ValidationError

from backend.stats import FleetStats
from backend.web.charts import sparkline_points
from backend.web.login_throttle import LoginThrottle

log = logging.getLogger(__name__)

bp = Blueprint("web", __name__, template_folder="templates", static_folder="static", static_url_path="/ui/static")

OPEN_ENDPOINTS = ("web.root", "web.login", "web.static")  # reachable before logging in


@bp.record_once
def _configure(state) -> None:
    """Session cookie and CSRF settings, on the app this blueprint joins (SPEC §12)."""
    app = state.app
    settings = app.extensions["outage"].settings.dashboard
    app.extensions["dashboard_logins"] = LoginThrottle()
    app.extensions["dashboard_fleet"] = FleetStats()
    if settings is None:
        return
    app.secret_key = settings.secret_key
    app.config.update(SESSION_COOKIE_NAME="outage_dashboard", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.https,
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=12))
    app.jinja_env.globals.update(csrf_token=generate_csrf)


@bp.before_request
def _guard():
    """Off (404) without DASHBOARD_PASSWORD; a CSRF token on every POST; a login for every page but the login."""
    if current_app.extensions["outage"].settings.dashboard is None:
        abort(404)
    if request.method == "POST":
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError as exc:
            log.warning("dashboard %s %s refused: %s", request.method, request.path, exc)
            return render_template("message.html", title="Form expired",
                                   message="This form was stale or not sent by the dashboard; reload the page "
                                           "and try again."), 400
    if request.endpoint not in OPEN_ENDPOINTS and not session.get("signed_in"):
        return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
    return None


@bp.app_template_filter("sparkline")
def _sparkline(response_ms):
    return sparkline_points([value for _, value in response_ms])
