"""The WSGI app for production servers: `gunicorn -c backend/gunicorn_conf.py backend.wsgi:app`.

Each gunicorn worker imports this module once: settings, logging and the app are built here.
gunicorn_conf.py has already checked the settings, the port and the database in the master.
"""

import os

from backend.config import load_settings, read_environment
from backend.factory import create_served_app
from backend.peer_wake import FOLDER_ENV

app = create_served_app(load_settings(read_environment()),
                        process=f"gunicorn worker pid {os.getpid()}, master pid {os.getppid()}",
                        wake_folder=os.environ.get(FOLDER_ENV))
