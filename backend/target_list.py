"""The loaded targets list (SPEC §8): the file read into the database, watched for changes, served.

Every backend process loads the file at start; after that one process at a time (the holder of
the `targets-file` lease) watches it and reloads it when it changes, and POST /targets/reload
reloads it from any process. The list lives in the database, so every worker serves the same one.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Engine

from backend import store, store_channels, store_silences
from backend.alert_timers import back_fill
from backend.config import Settings
from backend.background import BackgroundLoop
from backend.database import write_transaction
from backend.errors import ApiError
from backend.leases import Lease
from backend.ping_tokens import new_ping_token, ping_url
from backend.targets_file import (LoadedFile, TargetsFileError, agent_view, dumps_spec, public_view, read_file,
                                  shown_path)
from backend.time_text import now_text, precise_text
from common.logs import plural

log = logging.getLogger(__name__)

MIN_LEASE_SECONDS = 10.0  # the watcher's lease; renewed at a third of it, so a holder's hiccup keeps its turn


@dataclass(frozen=True)
class LoadSummary:
    """What one load of the file changed in the running list."""

    total: int
    added: int = 0
    changed: int = 0
    removed: int = 0
    is_unchanged: bool = False  # the file was the one already loaded: nothing was written

    def as_dict(self) -> dict:
        return {"targets": self.total, "added": self.added, "changed": self.changed, "removed": self.removed}


def store_loaded(engine: Engine, loaded: LoadedFile, reminder_minutes: float | None = None) -> LoadSummary:
    """Make the database's list the file's, in one transaction; nothing is written when it already is.

    `reminder_minutes`: REMINDER_MINUTES, for open alerts that the file now gives reminders (SPEC §11).
    """
    now = now_text()
    with write_transaction(engine) as conn:
        if store.lock_targets_file(conn) == loaded.fingerprint:
            return LoadSummary(len(loaded.targets), is_unchanged=True)
        before = store.file_target_rows(conn)
        added, updated, changed = [], [], 0
        for position, spec in enumerate(loaded.targets):
            old = before.get(spec["name"])
            row = {"name": spec["name"], "position": position, "kind": spec["kind"],
                   "target_url": spec["target_url"], "spec": dumps_spec(spec), "loaded_at": now, "changed_at": now,
                   "ping_token": ping_token_for(spec, old)}
            if old is None:
                added.append(row)
            elif old["spec"] != row["spec"]:
                changed += 1
                updated.append(row)
            elif old["position"] != position or old["ping_token"] != row["ping_token"]:
                updated.append({**row, "changed_at": old["changed_at"]})  # only moved, or given its ping token
        names = {spec["name"] for spec in loaded.targets}
        removed = [name for name in before if name not in names]
        store.save_file_targets(conn, loaded.fingerprint, now, added, updated, removed)
        store_channels.save_channels(conn, loaded.channels)
        windows = [dumps_spec(window) for window in loaded.maintenance]
        windows_changed = [row["spec"] for row in store_silences.maintenance_rows(conn)] != windows
        store_silences.save_maintenance(conn, windows)
        silenced = store.forget_removed_targets(conn, removed, now) if removed else []
        back_fill(conn, loaded.targets, reminder_minutes)  # reminders and escalation a reload turned on
        if windows_changed:  # after the alert rows above: alert, then notification_logs, as release_ended locks
            store_silences.release_maintenance_suppressed(conn, precise_text(datetime.now(timezone.utc)))
    if silenced:
        log.info("%s of targets removed from the file resolved, without a notice: %s",
                 plural(len(silenced), "active alert"), ", ".join(map(str, silenced)))
    return LoadSummary(len(loaded.targets), len(added), changed, len(removed))


def ping_token_for(spec: dict, old: dict | None) -> str | None:
    """A push target keeps its token across reloads and changes; it gets one when it first needs it."""
    if spec["kind"] != "push":
        return None
    return old["ping_token"] if old is not None and old["ping_token"] else new_ping_token()


class TargetList:
    """The app's view of the loaded list: load at start, reload, serve, and watch the file."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings
        self._agent_cache: tuple[str | None, list[dict]] | None = None  # (fingerprint, targets)
        self.watcher: FileWatcher | None = None
        self._seen_at_start: tuple | None = None

    def load_at_start(self) -> LoadSummary:
        """Validate and store the file; TargetsFileError when it is invalid."""
        self._seen_at_start = _file_state(self.settings.targets_file)  # before reading: a later write changes it
        return self._load("loaded at start")

    def start_watching(self) -> None:
        """Reload the list whenever the file changes, in whichever process holds the lease."""
        self.watcher = FileWatcher(self, self._seen_at_start)

    def reload(self, why: str) -> LoadSummary:
        """Re-read the file and apply it; an invalid file raises TargetsFileError and the list stays."""
        return self._load(why)

    def _load(self, why: str) -> LoadSummary:
        summary = store_loaded(self.engine, read_file(self.settings), self.settings.reminder_minutes)
        if summary.is_unchanged:
            log.info("targets file %s %s: %s, unchanged", shown_path(self.settings), why, plural(summary.total, "target"))
        else:
            log.info("targets file %s %s: %s (%d added, %d changed, %d removed)", shown_path(self.settings), why,
                     plural(summary.total, "target"), summary.added, summary.changed, summary.removed)
        return summary

    def agent_targets(self) -> dict:
        """GET /agent/targets: http and tcp targets, secrets resolved (notes/target_spec.md)."""
        with self.engine.connect() as conn:
            # The fingerprint first: a reload committing between the two reads leaves a stale
            # fingerprint beside the new list, which the next call rebuilds, never the reverse.
            fingerprint = store.targets_file_fingerprint(conn)
            cached = self._agent_cache
            if cached is None or cached[0] != fingerprint:
                specs = [json.loads(text) for text in store.file_target_specs(conn, ("http", "tcp"))]
                cached = self._agent_cache = (fingerprint, specs)
            paused = store_silences.paused_names(conn)  # not checked (SPEC §11)
        try:
            targets = [agent_view(spec, self.settings.environment) for spec in cached[1] if spec["name"] not in paused]
        except KeyError as missing:  # loaded by a backend process whose environment had it
            log.error("cannot serve the targets to agents: ${%s} is not set in this backend process's environment",
                      missing.args[0])
            raise ApiError(500, f"${{{missing.args[0]}}} is used in the targets file but not set in this backend "
                           "process's environment.") from None
        return {"refresh_seconds": _number(self.settings.agent_refresh_seconds), "targets": targets}

    def page(self, limit: int, offset: int, base_url: str) -> dict:
        """GET /targets: a page of targets in file order with their state; push targets show a ping_url on base_url."""
        with self.engine.connect() as conn:
            rows = store.list_file_targets(conn, limit, offset)
            names = [row["name"] for row in rows]
            active = store.active_alerts_of(conn, names) if names else {}
            total = store.count_file_targets(conn)
            paused = store_silences.paused_names(conn)
        targets = []
        for row in rows:
            alert = active.get(row["name"])
            shown = public_view(json.loads(row["spec"]))
            is_paused = row["name"] in paused
            shown.update({"state": target_state(row["last_check_at"], alert, is_paused), "paused": is_paused,
                          "failures_in_a_row": row["failures_in_a_row"] or 0,
                          "last_check": row["last_check_at"], "alert": alert})
            if row["ping_token"] and shown["kind"] == "push":
                shown["ping_url"] = ping_url(base_url, row["ping_token"])
            targets.append(shown)
        return {"targets": targets, "limit": limit, "offset": offset, "total": total}

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.close()


def target_state(last_check_at: str | None, alert: dict | None, paused: bool = False) -> str:
    """DOWN (an active ERROR), WARNING (an active WARNING), PAUSED, UNKNOWN (no result yet), else UP (SPEC §8)."""
    if alert is not None:
        return "DOWN" if alert["alert_type"] == "ERROR" else "WARNING"
    if paused:
        return "PAUSED"
    return "UNKNOWN" if last_check_at is None else "UP"


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _file_state(path) -> tuple | None:
    """What a cheap poll compares: the file's inode, size and modification time, or None when absent."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


class FileWatcher(BackgroundLoop):
    """A thread that reloads the list when the file changes, in the one process holding the lease."""

    what = "targets file watch"

    def __init__(self, targets: TargetList, seen: tuple | None):
        poll = targets.settings.targets_poll_seconds
        super().__init__("targets-watch", poll,
                         Lease(targets.engine, "targets-file", max(10 * poll, MIN_LEASE_SECONDS)))
        self.targets = targets
        self._seen = seen      # the file's state at the last poll
        self._applied = seen   # the state last read (loaded or refused): nothing to do until it changes
        self.start()

    def run_once(self) -> LoadSummary | None:
        """Look at the file once; reload it when it changed and has stayed still for one poll."""
        if not self.holds():
            return None
        state = _file_state(self.targets.settings.targets_file)
        if state != self._seen:
            self._seen = state  # still being written, perhaps: wait until it stays still for one poll
            return None
        if state == self._applied:
            return None
        try:
            summary = self.targets.reload("changed on disk, reloaded")
        except TargetsFileError as exc:
            log.error("targets file not reloaded, the running list stays: %s", exc)
            summary = None
        # Only now: after a database error (raised past here) the next poll tries this version again.
        self._applied = state
        return summary
