"""The dashboard's routes (SPEC §12): login, targets, alerts, a target's page; thin, over backend/dashboard.py."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from urllib.parse import urlsplit

from flask import current_app, flash, redirect, render_template, request, session, url_for
from werkzeug.security import check_password_hash

from backend import dashboard, silence_service
from backend.errors import ApiError
from backend.rules import AlertStatus
from backend.web import channels_page, silences_page  # noqa: F401  their routes join bp too
from backend.web.blueprint import bp

log = logging.getLogger(__name__)

STATUS_CHOICES = [status.value for status in AlertStatus]
REFRESH_SECONDS = 10


@bp.get("/")
def root():
    """The dashboard's front page, when it is on (SPEC §12)."""
    return redirect(url_for("web.overview"))


@bp.route("/ui/login", methods=["GET", "POST"])
def login():
    """The password form; a wrong password is refused and each address's failures slow it down."""
    next_page = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next_page=next_page)
    throttle, address = current_app.extensions["dashboard_logins"], request.remote_addr or "unknown"
    wait = throttle.retry_after(address)
    if wait > 0:
        return render_template("login.html", next_page=next_page,
                               error=f"Too many wrong passwords from your address; try again in {wait:.0f} s."), 429
    password_hash = current_app.extensions["outage"].settings.dashboard.password_hash
    if not check_password_hash(password_hash, request.form.get("password", "")):
        throttle.failed(address)
        log.warning("dashboard login refused for %s: wrong password", address)
        return render_template("login.html", next_page=next_page, error="Wrong password."), 401
    throttle.succeeded(address)
    session.clear()  # a fresh session (and CSRF token) after login
    session.permanent = True
    session["signed_in"] = True
    log.info("dashboard login from %s", address)
    return redirect(next_page)


@bp.post("/ui/logout")
def logout():
    """Forget the session."""
    session.clear()
    return redirect(url_for("web.login"))


@bp.get("/ui/")
def overview():
    """Every target with its state, uptime and response times."""
    targets = dashboard.overview(_engine(), current_app.extensions["dashboard_fleet"])
    counts = {state: sum(t["state"] == state for t in targets)
              for state in ("UP", "DOWN", "WARNING", "PAUSED", "UNKNOWN")}
    return render_template("overview.html", targets=targets, counts=counts, refresh=REFRESH_SECONDS)


@bp.get("/ui/alerts")
def alerts():
    """The newest alerts, filtered by ?status=, with ACK and Resolve buttons."""
    status = request.args.get("status") or None
    if status not in (None, *STATUS_CHOICES):
        status = None
    return render_template("alerts.html", alerts=dashboard.alert_list(_engine(), status), status=status,
                           choices=STATUS_CHOICES, refresh=REFRESH_SECONDS)


@bp.post("/ui/alerts/<int:alert_id>/status")
def change_alert(alert_id: int):
    """Acknowledge or resolve an alert through the same service call as PATCH /alerts/<id>."""
    requested = request.form.get("status")
    if requested not in (AlertStatus.ACK.value, AlertStatus.RESOLVED.value):
        flash("status must be ACK or RESOLVED.", "error")
    else:
        try:
            current_app.extensions["outage"].service.change_alert_status(alert_id, AlertStatus(requested), "dashboard")
            flash(f"Alert {alert_id} is now {requested}.", "ok")
        except ApiError as exc:
            flash(exc.message, "error")
    return redirect(_safe_next(request.form.get("next"), url_for("web.alerts")))


@bp.get("/ui/targets/<path:name>")
def target(name: str):
    """One target: its state, recent checks, alerts and delivery attempts."""
    shown = dashboard.target_detail(_engine(), name)
    if shown is None:
        return render_template("message.html", title="No such target",
                               message=f"No target is named {name!r}."), 404
    chart = [[_epoch(c["checked_at"]) for c in reversed(shown["checks"])],
             [c["response_time_ms"] for c in reversed(shown["checks"])]]
    return render_template("target.html", target=shown, chart=chart, refresh=REFRESH_SECONDS)


@bp.post("/ui/targets/<path:name>/paused")
def pause_target(name: str):
    """Pause or resume a target through the same call as PATCH /targets/<name> (SPEC §11)."""
    paused = request.form.get("paused") == "true"
    try:
        silence_service.set_paused(_engine(), name, paused, datetime.now(timezone.utc))
        flash(f"{name} is {'paused: it is not checked' if paused else 'checked again'}.", "ok")
    except ApiError as exc:
        flash(exc.message, "error")
    return redirect(url_for("web.target", name=name))


def _engine():
    return current_app.extensions["outage"].engine


def _epoch(checked_at: str) -> float:
    """A stored check time (UTC text) as seconds since the epoch, for the chart."""
    return datetime.fromisoformat(checked_at).replace(tzinfo=timezone.utc).timestamp()


def _safe_next(raw: str | None, default: str | None = None) -> str:
    """A page of this dashboard to go back to; anything else (another host, //evil) is the default."""
    parts = urlsplit(raw or "")
    if raw and not parts.scheme and not parts.netloc and parts.path.startswith("/ui/") and "\\" not in raw:
        return raw
    return default or url_for("web.overview")

