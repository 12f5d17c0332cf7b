"""create_app(settings): a fresh app with its engine, service, dispatcher and routes (SPEC §1)."""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import Engine

from backend.api import agents, alerts, channels, docs, events, health, metrics, paused, ping, silences, targets
from backend.channel_watch import ChannelWatch
from backend.config import Settings
from backend.deadline_timer import DeadlineTimer
from backend.dispatch import Dispatcher, fail_deliveries_of_removed_channels
from backend.errors import register_error_handlers
from backend.log_setup import configure_logging
from backend.notifiers import Notifier, enabled_notifiers
from backend.peer_wake import PeerWake
from backend.retention import RetentionPurger
from backend.rollups import Roller
from backend.service import AlertService
from backend.startup import open_database
from backend.target_list import TargetList
from backend.web import status as status_page, views as dashboard_views
from backend.telegram_updates import TelegramUpdates
from common.config import api_key_warning

log = logging.getLogger("backend")

# 1000 events of generous size fit; anything larger is refused with 413 before it is read.
MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass
class AppContext:
    """What the routes need, kept on app.extensions["outage"]."""

    settings: Settings
    engine: Engine
    service: AlertService
    dispatcher: Dispatcher
    purger: "RetentionPurger"
    targets: TargetList
    roller: Roller
    timer: DeadlineTimer | None = None
    channels: ChannelWatch | None = None
    telegram_updates: TelegramUpdates | None = None  # button presses (SPEC §10), when Telegram is on

    def close(self) -> None:
        """Stop the background threads (finishing attempts in hand) and the database pool."""
        if self.telegram_updates is not None:
            self.telegram_updates.close()
        if self.channels is not None:
            self.channels.close()
        if self.timer is not None:
            self.timer.close()
        self.targets.close()
        self.roller.close()
        self.purger.close()
        self.dispatcher.close(timeout=self.settings.notify_timeout_seconds + 5)
        self.engine.dispose()


def create_app(settings: Settings, notifiers: list[Notifier] | None = None) -> Flask:
    """Build the app; the schema is created if missing, so a fresh database just works."""
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY_BYTES, JSON_SORT_KEYS=False)
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    engine = open_database(settings.database_url)
    target_list = TargetList(engine, settings)
    try:  # before any thread starts: an invalid targets file (TargetsFileError) leaves nothing running
        target_list.load_at_start()
    except Exception:
        engine.dispose()
        raise
    notifiers = enabled_notifiers(settings) if notifiers is None else notifiers
    fail_deliveries_of_removed_channels(engine, [n.channel for n in notifiers])  # the file's named ones are kept
    dispatcher = Dispatcher(engine, notifiers, retries=settings.notify_retries,
                            backoff_base_seconds=settings.notify_backoff_seconds,
                            poll_seconds=settings.notify_poll_seconds, lease_seconds=settings.notify_lease_seconds)
    channel_watch = ChannelWatch(engine, settings, notifiers, dispatcher)
    channel_watch.run_once()  # the named channels of the file just loaded, before the first request
    service = AlertService(engine, settings.failure_threshold, [n.channel for n in notifiers],
                           settings.reminder_minutes)
    purger = RetentionPurger(engine, settings.retention_days, settings.retention_interval_seconds)
    roller = Roller(engine, settings.rollup_interval_seconds)
    app.extensions["outage"] = AppContext(settings, engine, service, dispatcher, purger, target_list, roller,
                                          channels=channel_watch)
    register_error_handlers(app)
    for blueprint in (health.bp, events.bp, alerts.bp, targets.bp, agents.bp, ping.bp, channels.bp, metrics.bp,
                      docs.bp, silences.bp, paused.bp, dashboard_views.bp, status_page.bp):
        app.register_blueprint(blueprint)
    target_list.start_watching()
    channel_watch.start()
    app.extensions["outage"].timer = DeadlineTimer(service, settings.agent_refresh_seconds,
                                                   on_alert=dispatcher.wake)
    if settings.telegram_enabled:
        app.extensions["outage"].telegram_updates = TelegramUpdates(
            service, settings.telegram_bot_token, settings.telegram_api_base_url, settings.notify_language)
    return app


_served: Flask | None = None


def served_app() -> Flask | None:
    """The app this server process built with create_served_app, once it is built (None before)."""
    return _served


def create_served_app(settings: Settings, process: str | None = None, wake_folder: str | None = None) -> Flask:
    """The app as a server process runs it: logging set up once, the app built, one line saying where.

    `process` says which process this is (`gunicorn worker pid 12, master pid 11`); default `pid 12`.
    `wake_folder`: where the workers of one gunicorn master wake each other's dispatchers (peer_wake.py).
    """
    configure_logging(settings.log_file, settings.log_max_bytes, settings.log_backups)
    warning = api_key_warning(settings.api_key)
    if warning:
        log.warning(warning)
    global _served
    app = _served = create_app(settings)
    ctx = app.extensions["outage"]
    if wake_folder:
        ctx.dispatcher.wake_peers_through(PeerWake(wake_folder, ctx.dispatcher.wake_here))
    log.info("backend (%s) serving http://%s:%d (database %s, failure threshold %d, channels: %s)",
             process or f"pid {os.getpid()}", settings.host, settings.port,
             ctx.engine.url.render_as_string(hide_password=True), settings.failure_threshold,
             ", ".join(n.channel for n in ctx.dispatcher.notifiers))
    # What is built by now lives as long as the process (modules, the app, its engine and threads):
    # left out of every later collection. A full collection walked all of it, some 100 ms, about
    # once in twenty batches of 500, most often while the write lock was held (bench/ingest.py).
    # No gc.collect() first: with it, a gunicorn worker on PostgreSQL stopped by Ctrl-C ran its
    # quit handler inside a weakref callback of a later collection, and printed a traceback
    # (tests/test_run_script.py); the little garbage frozen with the rest is kept, never grows.
    gc.freeze()
    return app
