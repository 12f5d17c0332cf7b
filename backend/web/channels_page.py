"""The dashboard's channels page (SPEC §10): the configured channels, each with a "Send test" button."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, url_for

from backend.channel_test import channel_list, run_channel_test
from backend.errors import ApiError
from backend.web.blueprint import bp


@bp.get("/ui/channels")
def channels():
    """Every configured channel (GET /channels' view, secrets redacted) with a button to send it a test."""
    return render_template("channels.html", channels=channel_list(current_app.extensions["outage"].channels))


@bp.post("/ui/channels/<name>/test")
def test_channel(name: str):
    """Send one test notice through the same call as POST /channels/<name>/test; show SENT or FAILED and why."""
    ctx = current_app.extensions["outage"]
    try:
        row = run_channel_test(ctx.engine, ctx.channels, name)
    except ApiError as exc:
        flash(exc.message, "error")
    else:
        failed = row["status"] != "SENT"
        flash(f"Test notice via {name}: {row['status']}" + (f" ({row['error_message']})." if failed else "."),
              "error" if failed else "ok")
    return redirect(url_for("web.channels"))
