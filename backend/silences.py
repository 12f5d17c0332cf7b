"""Silences and maintenance windows (SPEC §11): which one keeps a target's notices quiet at a moment.

`suppression_at` is the pure decision; `silence_for` reads what it needs from the database and
asks it, and is what ingest, the silence-end pass and the reminders call when a notice is due.
`parse_new_silence` checks a POST /silences body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection

from backend import store_silences
from backend.errors import INVALID_REQUEST, ApiError
from backend.maintenance import Window, maintenance_at, matches, window_of
from backend.time_text import precise_text

MAX_MATCH_LENGTH = 500
MAX_REASON_LENGTH = 500
SILENCE_KEYS = ("match", "starts_at", "ends_at", "reason")


@dataclass(frozen=True)
class Silence:
    """A silence as the decision reads it: times aware UTC, ends_at exclusive."""

    id: int
    match: str
    starts_at: datetime
    ends_at: datetime
    reason: str = ""


@dataclass(frozen=True)
class Suppression:
    """What keeps a notice quiet: a silence (its id) or a maintenance window, and until when."""

    silence_id: int | None
    suppressed_by: str  # "silence 3" or "maintenance <name>": what the notification_logs row says
    ends_at: datetime


def suppression_at(silences: list[Silence], windows: list[Window], name: str, tags, now: datetime
                   ) -> Suppression | None:
    """The silence or open maintenance window that applies to target `name` with `tags` at `now`, or None (SPEC §11).

    When several apply, the one that ends last: its end is when the target's notices resume.
    """
    found = None
    for silence in silences:
        if silence.starts_at <= now < silence.ends_at and matches(silence.match, name, tags):
            if found is None or silence.ends_at > found.ends_at:
                found = Suppression(silence.id, f"silence {silence.id}", silence.ends_at)
    window = maintenance_at(windows, name, tags, now)
    if window is not None and (found is None or window[1] > found.ends_at):
        found = Suppression(None, f"maintenance {window[0].label}", window[1])
    return found


class QuietTimes:
    """The silences in force and the maintenance windows, read once: an ingest batch asks it for each notice."""

    def __init__(self, conn: Connection, now: datetime):
        self.conn = conn
        self.silences = [silence_of(row) for row in store_silences.silences_in_force(conn, precise_text(now))]
        self.windows = [window_of(json.loads(row["spec"]), row["position"])
                        for row in store_silences.maintenance_rows(conn)]

    def silence_for(self, target_name: str, now: datetime) -> dict | None:
        """The silence or window keeping `target_name`'s notices quiet at `now`, as silence_for says, or None."""
        if not self.silences and not self.windows:
            return None  # the usual case: nothing more to read
        found = suppression_at(self.silences, self.windows, target_name,
                               store_silences.target_tags(self.conn, target_name), now)
        if found is None:
            return None
        return {"silence_id": found.silence_id, "suppressed_by": found.suppressed_by,
                "ends_at": precise_text(found.ends_at)}


def silence_for(conn: Connection, target_name: str, now: datetime | None = None) -> dict | None:
    """The silence or maintenance window keeping `target_name`'s notices quiet now, as a dict, or None.

    The dict: `silence_id` (None for a maintenance window), `suppressed_by` (its words for the log
    row), `ends_at` (stored UTC text). Two or three small reads; call it only when a notice is due.
    """
    now = now or datetime.now(timezone.utc)
    return QuietTimes(conn, now).silence_for(target_name, now)


def silence_of(row: dict) -> Silence:
    """A silences row as the decision reads it."""
    return Silence(row["id"], row["match"], _moment(row["starts_at"]), _moment(row["ends_at"]), row["reason"] or "")


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def parse_new_silence(body: Any, now: datetime) -> dict:
    """A POST /silences body as a silences row, or ApiError 400 naming the field (SPEC §11)."""
    if not isinstance(body, dict):
        raise _invalid("The body must be a JSON object with match, ends_at and optionally starts_at and reason.")
    for key in body:
        if key not in SILENCE_KEYS:
            raise _invalid(f"{key} is not a known field; a silence takes {', '.join(SILENCE_KEYS)}.", key)
    match = body.get("match")
    if not isinstance(match, str) or not match.strip() or len(match) > MAX_MATCH_LENGTH or "\x00" in match:
        raise _invalid("match must be a target name, a shell-style glob over names (web-*) or tag:<tag>, "
                       f"at most {MAX_MATCH_LENGTH} characters.", "match")
    if match.startswith("tag:") and not match[len("tag:"):]:
        raise _invalid("match tag: needs a tag name after the colon, such as tag:prod.", "match")
    starts_at = _aware_time(body, "starts_at") if body.get("starts_at") is not None else now
    if "ends_at" not in body or body["ends_at"] is None:
        raise _invalid("ends_at is required: when the silence ends, with a UTC offset.", "ends_at")
    ends_at = _aware_time(body, "ends_at")
    if ends_at <= starts_at:
        raise _invalid("ends_at must be after starts_at.", "ends_at")
    if ends_at <= now:
        raise _invalid("ends_at must be in the future.", "ends_at")
    reason = body.get("reason", "")
    if reason is None:
        reason = ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH or "\x00" in reason:
        raise _invalid(f"reason must be text of at most {MAX_REASON_LENGTH} characters.", "reason")
    return {"match": match, "starts_at": precise_text(starts_at), "ends_at": precise_text(ends_at),
            "reason": reason, "created_at": precise_text(now)}


def _aware_time(body: dict, field: str) -> datetime:
    """An ISO 8601 date-time with a UTC offset, as aware UTC; ApiError naming `field` otherwise."""
    value = body[field]
    problem = f"{field} must be an ISO 8601 date-time with a UTC offset, such as 2026-12-24T18:00:00+01:00 or ...Z."
    if not isinstance(value, str):
        raise _invalid(problem, field)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _invalid(problem, field) from None
    if moment.tzinfo is None:
        raise _invalid(problem, field)
    return moment.astimezone(timezone.utc)


def _invalid(message: str, field: str | None = None) -> ApiError:
    details = {"code": INVALID_REQUEST}
    if field is not None:
        details["field"] = field
    return ApiError(400, message, details=details)


def silence_view(row: dict, now: datetime) -> dict:
    """A silence as the API shows it: times in ISO 8601 with Z, and whether it is upcoming, active or ended."""
    starts_at, ends_at = _moment(row["starts_at"]), _moment(row["ends_at"])
    state = "upcoming" if now < starts_at else "active" if now < ends_at else "ended"
    return {"id": row["id"], "match": row["match"], "starts_at": _iso(starts_at), "ends_at": _iso(ends_at),
            "reason": row["reason"] or "", "state": state, "created_at": _iso(_moment(row["created_at"])),
            "ended_early_at": _iso(_moment(row["ended_early_at"])) if row["ended_early_at"] else None}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
