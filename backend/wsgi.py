"""The WSGI app for production servers: `gunicorn -c backend/gunicorn_conf.py backend.wsgi:app`.

Each gunicorn worker imports this module once: settings, logging and the app are built here.
"""

import logging
import os

from backend.config import load_settings, read_environment
from backend.factory import create_app
from backend.log_setup import configure_logging

settings = load_settings(read_environment())
configure_logging(settings.log_file, settings.log_max_bytes, settings.log_backups)
app = create_app(settings)
logging.getLogger("backend").info(
    "backend worker %d serving http://%s:%d (database %s, failure threshold %d, channels: %s)", os.getpid(),
    settings.host, settings.port, app.extensions["outage"].engine.url.render_as_string(hide_password=True),
    settings.failure_threshold, ", ".join(n.channel for n in app.extensions["outage"].dispatcher.notifiers))
