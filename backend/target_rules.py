"""Which target an event belongs to, and that target's rule settings (SPEC §8, §9), cached per process.

The settings come from the loaded targets file: the target's own value, else the file's `defaults:`
(both merged into the stored spec at load), else the backend's environment (FAILURE_THRESHOLD;
success_threshold 1). They are read once per version of the file: each batch asks only for the
file's fingerprint, inside its own transaction, and rebuilds the cache when it changed.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from sqlalchemy import Connection

from backend import store, store_channels, store_silences
from backend.rules import RuleSettings


@dataclass(frozen=True)
class Resolved:
    """An event's target key and settings; `settings` is None for a named target not in the file (no rules)."""

    key: str
    settings: RuleSettings | None
    in_file: bool  # the key is a file target's name (stored as events.target)


@dataclass(frozen=True)
class TargetBook:
    """One version of the targets file as the rules need it: settings by name, names by URL."""

    by_name: dict[str, Resolved]      # each file target, resolved
    by_url: dict[str, Resolved]       # the URLs of exactly one file target each, resolved to it
    defaults: RuleSettings  # for a target not in the file, named by its URL
    named_channels: tuple[str, ...] = ()  # the file's named channels (SPEC §10): notices go there too
    paused: dict[str, RuleSettings] | None = None  # paused targets' file settings: their reminders keep the beat

    def resolve(self, target: str | None, target_url: str) -> Resolved:
        """The event's key: its `target` when sent, else the one file target with its URL, else the URL (SPEC §8)."""
        if target is not None:
            return self.by_name.get(target) or Resolved(target, None, False)
        return self.by_url.get(target_url) or Resolved(target_url, self.defaults, False)


def rule_settings(spec: dict, failure_threshold: int, reminder_minutes: float | None = None) -> RuleSettings:
    """A file target's rule settings from its stored spec; unset keys take the backend's defaults."""
    # A push target's missed ping or /fail is an outage at once unless the file says otherwise.
    default_threshold = 1 if spec.get("kind") == "push" else failure_threshold
    channels = spec.get("channels")
    escalate = spec.get("escalate")
    return RuleSettings(
        failure_threshold=spec.get("failure_threshold") or default_threshold,
        success_threshold=spec.get("success_threshold") or 1,
        max_response_time_ms=spec.get("max_response_time_ms"),
        tls_expiry_days=spec.get("tls_expiry_days"),
        channels=tuple(channels) if channels is not None else None,
        # The target's (or defaults') reminder_minutes, 0 meaning none for it; unset: REMINDER_MINUTES.
        reminder_minutes=(reminder_minutes if spec.get("reminder_minutes") is None
                          else spec["reminder_minutes"] or None),
        escalate_after_minutes=escalate["after_minutes"] if escalate else None,
        escalate_channels=tuple(escalate["channels"]) if escalate else (),
    )


class TargetRules:
    """The per-process cache of TargetBook, keyed by the targets file's fingerprint and the last pause."""

    def __init__(self, failure_threshold: int, reminder_minutes: float | None = None):
        self.defaults = RuleSettings(failure_threshold, reminder_minutes=reminder_minutes)
        self._lock = threading.Lock()
        self._cached: tuple[str | None, TargetBook] | None = None

    def last_book(self) -> TargetBook | None:
        """The version this process read last, without asking whether it is still current (None before any)."""
        cached = self._cached
        return cached[1] if cached is not None else None

    def book(self, conn: Connection) -> TargetBook:
        """The current version's book, read inside the caller's transaction (one small query when cached)."""
        fingerprint = store.share_targets_file(conn)  # a reload waits for the caller's transaction
        cached = self._cached
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        by_name, names_by_url, held = {}, {}, {}
        paused = store_silences.paused_names(conn)
        for row in store.file_target_rule_rows(conn):
            settings = rule_settings(json.loads(row["spec"]), self.defaults.failure_threshold,
                                     self.defaults.reminder_minutes)
            if row["name"] in paused:
                # A paused target's events are stored without rules (SPEC §11), as for a named target not in the file.
                held[row["name"]], settings = settings, None
            by_name[row["name"]] = Resolved(row["name"], settings, True)
            if row["target_url"] is not None:
                names_by_url.setdefault(row["target_url"], []).append(row["name"])
        by_url = {url: by_name[names[0]] for url, names in names_by_url.items() if len(names) == 1}
        book = TargetBook(by_name, by_url, self.defaults, tuple(store_channels.loaded_channels(conn)[1]), held)
        with self._lock:
            self._cached = (fingerprint, book)
        return book
