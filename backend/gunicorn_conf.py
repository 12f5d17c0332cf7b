"""gunicorn settings for `make run`: several workers and threads, bound as FLASK_HOST/FLASK_PORT say.

Every worker runs the whole app; the database (BEGIN IMMEDIATE on SQLite, the unique active-alert
index, the dispatcher leases) keeps them from doubling alerts or notifications.
"""

import logging
import sys

from backend.config import ConfigError, load_settings, read_environment
from backend.target_list import read_file
from backend.targets_file import TargetsFileError

try:
    _settings = load_settings(read_environment())
    read_file(_settings)  # each worker loads it again; a bad file stops the start here, with one line
except (ConfigError, TargetsFileError) as exc:
    print(f"configuration error: {exc}", file=sys.stderr)
    sys.exit(2)

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "gthread"
threads = 4
# Long enough for the dispatcher to finish and record a notification attempt in hand.
graceful_timeout = int(_settings.notify_timeout_seconds) + 10
timeout = 60
accesslog = None
errorlog = "-"
loglevel = "warning"


def worker_exit(server, worker):
    """Stop the worker's dispatcher and purge threads cleanly, recording any attempt in hand."""
    app_module = sys.modules.get("backend.wsgi")
    if app_module is not None:
        app_module.app.extensions["outage"].close()
        logging.getLogger("backend").info("backend worker %d stopped", worker.pid)
