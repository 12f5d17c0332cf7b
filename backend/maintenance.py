"""Maintenance windows of the targets file (SPEC §11): the `maintenance:` entries as models, and when each is open.

Pure: no database. A window is weekly (`days:`, `start:`, `duration:`) or a cron expression plus
a `duration:`, read in its `timezone:` (default UTC). A start that a DST change skips
(02:30 on a spring-forward night) begins at the jump (03:00 by the new clock); a start it repeats
begins at its first occurrence only; the duration is elapsed time, so a 2h window across a change
still lasts two hours.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order
MAX_DURATION = timedelta(days=7)
_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?")
_START = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_RANDOM = re.compile(r"(?<![a-z])r(?![a-z])", re.IGNORECASE)  # croniter's R: a new random time at each read


class MaintenanceEntry(BaseModel):
    """One entry of the file's top-level `maintenance:` list."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    match: Annotated[str, Field(min_length=1, max_length=500)]
    days: list[str] | None = None
    start: str | None = None
    cron: str | None = None
    duration: str
    timezone: str = "UTC"

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or any(day not in DAYS for day in value)):
            raise ValueError(f"must be a list of days among {', '.join(DAYS)}")
        return value

    @field_validator("start")
    @classmethod
    def _start(cls, value: str | None) -> str | None:
        if value is not None and not _START.fullmatch(value):
            raise ValueError('must be a time of day as "HH:MM" (24-hour, in quotes)')
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError('must be a cron expression of five fields, such as "0 2 * * sat"')
        if _RANDOM.search(value):
            raise ValueError("R (a random time) is not allowed: a window starts at a set time")
        try:  # valid syntax, yet perhaps no date (30 February): each notice due would ask for one
            base = datetime.now(timezone.utc)
            croniter(value, base).get_prev(datetime)
            croniter(value, base).get_next(datetime)
        except CroniterBadDateError:
            raise ValueError("never matches a date (such as 30 February)") from None
        return value

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        parsed = parse_duration(value)
        if parsed is None or not timedelta(0) < parsed <= MAX_DURATION:
            raise ValueError('must be a length such as "2h", "90m" or "1h30m", at most 7d')
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be a time zone name such as UTC or Europe/Berlin") from None
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> "MaintenanceEntry":
        if self.cron is not None and (self.start is not None or self.days is not None):
            raise ValueError("takes either cron: or start: (with days:), not both")
        if self.cron is None and self.start is None:
            raise ValueError('needs start: "HH:MM" (with days:, default every day) or cron:')
        return self


def parse_duration(text: str) -> timedelta | None:
    """`2h`, `90m`, `1h30m`, `1d` as a timedelta; None when it is not of that form."""
    found = _DURATION.fullmatch(text.strip()) if text.strip() else None
    if found is None:
        return None
    days, hours, minutes = (int(part or 0) for part in found.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


@dataclass(frozen=True)
class Window:
    """A maintenance window as the decision reads it: a weekly one is the cron expression it amounts to."""

    label: str  # its name, else "maintenance[<index>]"
    match: str
    cron: str
    duration: timedelta
    zone: ZoneInfo


def window_of(entry: dict, index: int) -> Window:
    """A Window from one validated `maintenance:` entry (as stored) and its place in the list."""
    cron = entry.get("cron")
    if cron is None:  # days: [sat, sun], start: "02:30" is "30 2 * * sat,sun"
        hour, minute = entry["start"].split(":")
        cron = f"{int(minute)} {int(hour)} * * {','.join(entry['days']) if entry.get('days') else '*'}"
    return Window(entry.get("name") or f"maintenance[{index}]", entry["match"], cron,
                  parse_duration(entry["duration"]), ZoneInfo(entry.get("timezone") or "UTC"))


def open_until(window: Window, now: datetime) -> datetime | None:
    """When `window` closes if it is open at `now` (aware), else None."""
    try:
        start = latest_start(window, now)
    except CroniterError:  # a window that never comes, stored before loading refused it: closed, not a failed ingest
        return None
    end = start + window.duration
    return end if start <= now < end else None


def latest_start(window: Window, now: datetime) -> datetime:
    """The window's latest start at or before `now`, as an aware UTC time, read in its time zone by croniter.

    croniter starts a time that a spring-forward skips at the jump, and a time that a fall-back
    repeats twice; the second is dropped here, so that a window opens once a night.
    """
    # get_prev is strictly before its base: one second on, a start at `now` itself counts.
    runs = croniter(window.cron, (now + timedelta(seconds=1)).astimezone(window.zone))
    start = runs.get_prev(datetime)
    if start > now:  # the next start, under a second away: the window that may be open began before it
        start = runs.get_prev(datetime)
    before = runs.get_prev(datetime)
    if before.replace(tzinfo=None) == start.replace(tzinfo=None):
        start = before  # the same wall time twice in one night: its first occurrence
    return start.astimezone(timezone.utc)


def matches(match: str, name: str, tags: tuple[str, ...] | list[str]) -> bool:
    """Whether a silence's or window's `match` selects a target: `tag:<tag>`, else a glob over its name (SPEC §11)."""
    if match.startswith("tag:"):
        return match[len("tag:"):] in tags
    return fnmatchcase(name, match)


def maintenance_at(windows: list[Window], name: str, tags, now: datetime) -> tuple[Window, datetime] | None:
    """The window (and its end) that holds target `name` with `tags` in maintenance at `now`, or None."""
    found = None
    for window in windows:
        if matches(window.match, name, tags):
            end = open_until(window, now)
            if end is not None and (found is None or end > found[1]):
                found = (window, end)  # the one that lasts longest: its end is when notices resume
    return found
