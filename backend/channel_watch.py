"""Every backend process follows the loaded targets file's named channels (SPEC §10: changes apply on reload).

The file is reloaded by one process (backend/target_list.py) into the database; each process polls
the loaded file's fingerprint and, when it changed, rebuilds the named channels whose entry changed
and hands the dispatcher its new set. No lease: every process delivers its share of every channel.
"""

from __future__ import annotations

import json
import logging
import threading

from sqlalchemy import Engine

from backend import store_channels
from backend.background import BackgroundLoop
from backend.channels import named_notifiers
from backend.config import Settings
from backend.dispatch import Dispatcher, fail_deliveries_of_removed_channels
from backend.notifiers.base import Notifier

log = logging.getLogger(__name__)


class ChannelWatch(BackgroundLoop):
    """Keeps the dispatcher's channels the defaults plus the loaded file's named channels."""

    what = "named channels watch"

    def __init__(self, engine: Engine, settings: Settings, defaults: list[Notifier], dispatcher: Dispatcher):
        super().__init__("channels-watch", settings.targets_poll_seconds)
        self.engine, self.settings, self.defaults, self.dispatcher = engine, settings, defaults, dispatcher
        self._lock = threading.Lock()
        self._fingerprint: str | None = None
        self._entries: dict[str, str] = {}     # name -> its entry as JSON text, to rebuild only what changed
        self._named: dict[str, Notifier] = {}

    def run_once(self) -> bool:
        """Follow the loaded file once; True when the channels changed."""
        with self.engine.connect() as conn:
            fingerprint, channels = store_channels.loaded_channels(conn)
        with self._lock:
            if fingerprint == self._fingerprint:
                return False
            entries = {name: json.dumps(spec, sort_keys=True) for name, spec in channels.items()}
            changed = {name: channels[name] for name, text in entries.items() if self._entries.get(name) != text}
            named = {name: n for name, n in self._named.items() if name in entries and name not in changed}
            named.update(named_notifiers(changed, self.settings))
            removed = sorted(set(self._entries) - set(entries))
            first = self._fingerprint is None
            self._fingerprint, self._entries, self._named = fingerprint, entries, named
            self.dispatcher.set_channels([*self.defaults, *named.values()])
        if not first and (changed or removed):
            log.info("named channels changed: %s", ", ".join([*(f"+{n}" for n in sorted(changed)),
                                                              *(f"-{n}" for n in removed)]))
        if removed:  # their waiting notices would otherwise wait for ever
            fail_deliveries_of_removed_channels(self.engine, [n.channel for n in self.defaults])
        return True

    def notifier(self, name: str) -> Notifier | None:
        """The current notifier of a channel, by its name (`ops-mail`) or a default's (`console`, `telegram`)."""
        self.run_once()  # a reload from another process may not have reached this one's poll yet
        for notifier in self.dispatcher.notifiers:
            if notifier.channel == name or notifier.channel == name.upper() and notifier in self.defaults:
                return notifier
        return None

    def configured(self) -> tuple[list[Notifier], dict[str, dict]]:
        """The default notifiers and the loaded file's named channel entries (as written, `${NAME}` unresolved)."""
        with self.engine.connect() as conn:
            _, channels = store_channels.loaded_channels(conn)
        return list(self.defaults), channels
