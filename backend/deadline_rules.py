"""When a target's silence is an outage (SPEC §8 "no results", §9 push): pure functions, no database, no clock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

# Names the deadlines of synthetic events: uuid5(name + deadline) is the same in every process.
_DEADLINES = uuid.UUID("6f1e4c8a-3b7d-5e2f-9a41-0c8d2b7e5f13")


@dataclass(frozen=True)
class Watch:
    """What the deadline timer needs of one file target: how long it may stay silent, counted from when."""

    name: str
    kind: str            # http, tcp or push
    target_url: str
    window: float        # seconds of silence allowed: period + grace, or 3 x interval + timeout
    loaded: datetime     # when its clock was set: first load (push), last change of its settings (http, tcp)
    start: datetime      # before a first result the deadline counts from here
    allowance: float     # after the backend itself was down, a deadline is at least its restart plus this


def watch_of(name: str, kind: str, target_url: str, spec: dict, loaded_at: datetime, changed_at: datetime,
             refresh_seconds: float) -> Watch:
    """A target's Watch: a push target is due `period + grace` after its last ping (or its first load);
    an http or tcp target `3 x interval + timeout` after its last result, or after its agents had one
    refresh (AGENT_REFRESH_SECONDS) to pick up its settings, whichever is later (SPEC §8)."""
    if kind == "push":
        window = spec["period"] + spec["grace"]
        return Watch(name, kind, target_url, window, loaded_at, loaded_at, spec["grace"])
    window = 3 * spec["interval"] + spec["timeout"]
    start = changed_at + timedelta(seconds=refresh_seconds)
    # After a restart, agents need a refresh to find the backend again and a window to flush their spool.
    return Watch(name, kind, target_url, window, changed_at, start, refresh_seconds + window)


def due_at(watch: Watch, last_heard: datetime | None, resumed_at: datetime | None) -> datetime:
    """When the target's silence becomes an outage, on the backend's clock.

    The deadline counts from when its last result was received (never from an agent's check time:
    an agent whose clock is behind would look silent; a missed deadline's own failed event counts
    as a result, so the next deadline counts from the missed one), never from before `start`; and
    it is never earlier than `resumed_at + allowance`, the time a restarted backend gives pingers
    and agents to be heard again (SPEC §9).
    """
    base = watch.start if last_heard is None else max(last_heard, watch.start)
    due = base + timedelta(seconds=watch.window)
    if resumed_at is not None:
        due = max(due, resumed_at + timedelta(seconds=watch.allowance))
    return due


def missed_check_at(due: datetime, last_heard: datetime | None, last_check: datetime | None) -> datetime:
    """The check time of a missed deadline's failed event: `due` moved into the target's own check times.

    Its checks carry their agent's clock, which may differ from the backend's: stamped as long after
    the last check as `due` is after that check's arrival, the event sorts between the target's
    checks, and the agent's next result is newer (in order, so it can resolve the alert), not late.
    """
    if last_heard is None or last_check is None:
        return due
    return last_check + (due - last_heard)


def silence_message(watch: Watch, due: datetime, last_heard: datetime | None) -> str:
    """`no ping for 25h` or `no results for 95 s`: how long the target had been silent at its deadline."""
    silent = (due - (last_heard or watch.loaded)).total_seconds()
    return f"no {'ping' if watch.kind == 'push' else 'results'} for {humanise(silent)}"


def humanise(seconds: float) -> str:
    """A duration as a person says it: `2.5 s`, `95 s`, `90 min`, `25h`, `3d` (the forms of SPEC §8, §9)."""
    if seconds < 10:
        return f"{round(seconds, 1):g} s"
    if seconds < 120:
        return f"{round(seconds)} s"
    if seconds < 120 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)}h"
    return f"{round(seconds / 86400)}d"


def deadline_uid(name: str, due_text: str) -> str:
    """The event_uid of the failed event that marks one missed deadline: two processes store it once."""
    return str(uuid.uuid5(_DEADLINES, f"{name}\n{due_text}"))
