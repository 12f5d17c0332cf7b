"""The dashboard's silences page (SPEC §11): a list and thin forms over the functions POST and DELETE /silences use."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from flask import current_app, flash, redirect, render_template, request, url_for

from backend import silence_service
from backend.errors import ApiError
from backend.web.blueprint import bp

# The form's "for ..." choices; an explicit "ends at" wins over them.
DURATIONS = {"1h": timedelta(hours=1), "2h": timedelta(hours=2), "1d": timedelta(days=1)}
RECENT_ENDED = 20
MAX_SHOWN = 500


@bp.get("/ui/silences")
def silences():
    """Silences active and upcoming, the recently ended ones, and a form to add one."""
    engine, now = current_app.extensions["outage"].engine, datetime.now(timezone.utc)
    current = silence_service.list_silences(engine, now, False, MAX_SHOWN, 0)
    ended = [s for s in silence_service.list_silences(engine, now, True, RECENT_ENDED, 0) if s["state"] == "ended"]
    return render_template("silences.html", current=current, ended=ended, durations=DURATIONS,
                           form=request.args)


@bp.post("/ui/silences")
def add_silence():
    """Add a silence through the same call as POST /silences; a refusal is the API's own sentence."""
    now = datetime.now(timezone.utc)
    body = silence_body(request.form, now)
    try:
        silence = silence_service.add_silence(current_app.extensions["outage"].engine, body, now)
    except ApiError as exc:
        flash(exc.message, "error")
        kept = {k: request.form.get(k, "") for k in ("match", "starts_at", "ends_at", "ends_in", "reason")}
        return redirect(url_for("web.silences", **kept))
    flash(f"Silence {silence['id']} for {silence['match']} until {silence['ends_at']}.", "ok")
    return redirect(url_for("web.silences"))


@bp.post("/ui/silences/<int:silence_id>/end")
def end_silence(silence_id: int):
    """End a silence now through the same call as DELETE /silences/<id>."""
    try:
        silence_service.end_silence(current_app.extensions["outage"].engine, silence_id, datetime.now(timezone.utc))
        flash(f"Silence {silence_id} ended.", "ok")
    except ApiError as exc:
        flash(exc.message, "error")
    return redirect(url_for("web.silences"))


def silence_body(form, now: datetime) -> dict:
    """The POST /silences body the form describes: text passed on as typed, for the API's checks to judge."""
    body = {"match": form.get("match", ""), "reason": form.get("reason", "")}
    if form.get("starts_at", "").strip():
        body["starts_at"] = form["starts_at"]
    if form.get("ends_at", "").strip():
        body["ends_at"] = form["ends_at"]
    elif form.get("ends_in") in DURATIONS:
        body["ends_at"] = (now + DURATIONS[form["ends_in"]]).isoformat(timespec="seconds")
    return body
