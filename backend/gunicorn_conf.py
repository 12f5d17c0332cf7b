"""gunicorn settings for `make run`: several workers and threads, bound as FLASK_HOST/FLASK_PORT say.

Every worker runs the whole app; the database (BEGIN IMMEDIATE on SQLite, the unique active-alert
index, the dispatcher leases) keeps them from doubling alerts or notifications. The master checks
the settings, the port and the database before any worker starts, and exits 2 with one line.
"""

import logging
import os
import shutil
import signal
import sys
import tempfile

from backend.peer_wake import FOLDER_ENV, socket_path

_OURS = os.environ.get("OUTAGE_GUNICORN_MASTER") == str(os.getpid())  # a reload of this same master


def _private_dir(variable: str, prefix: str) -> None:
    """A fresh private folder of this master's, for its workers to share; named in `variable`, which they inherit.

    Never a folder given from outside, and one of our own only on a reload of this same master:
    an earlier run's or another server's files would mix with ours.
    """
    if not (_OURS and os.path.isdir(os.environ.get(variable, ""))):
        os.environ[variable] = tempfile.mkdtemp(prefix=prefix)  # mode 0700, empty


# The workers' metric files (prometheus_client's multiprocess mode): set before anything imports
# prometheus_client, which picks its storage at import time, and before the workers fork.
_private_dir("PROMETHEUS_MULTIPROC_DIR", "outage-metrics-")
_private_dir(FOLDER_ENV, "outage-wake-")  # the workers' wake sockets (backend/peer_wake.py)
os.environ["OUTAGE_GUNICORN_MASTER"] = str(os.getpid())


def _remove_private_dirs() -> None:
    for variable in ("PROMETHEUS_MULTIPROC_DIR", FOLDER_ENV):
        shutil.rmtree(os.environ[variable], ignore_errors=True)


from prometheus_client import multiprocess  # noqa: E402

from backend.config import ConfigError, load_settings, read_environment  # noqa: E402
from backend.gunicorn_worker import THREADS, QuietThreadWorker  # noqa: E402
from backend.startup import check_port_free, open_database  # noqa: E402
from backend.targets_file import TargetsFileError, read_file  # noqa: E402


def _refuse(exc: ConfigError | TargetsFileError):
    """One line naming the key, exit status 2, as every entry point does (SPEC §2)."""
    print(f"configuration error: {exc}", file=sys.stderr)
    _remove_private_dirs()
    sys.exit(2)


try:
    _settings = load_settings(read_environment())
    read_file(_settings)  # each worker loads it again; a bad file stops the start here, with one line
except (ConfigError, TargetsFileError) as exc:
    _refuse(exc)

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = QuietThreadWorker  # gthread, deaf to Ctrl-C
threads = THREADS
# Long enough for the dispatcher to finish and record a notification attempt in hand.
graceful_timeout = int(_settings.notify_timeout_seconds) + 10
timeout = 60
accesslog = None
errorlog = "-"
loglevel = "warning"


def on_starting(server):
    """Before binding (once; not again on a SIGHUP reload): the port is free and the database opens."""
    try:
        check_port_free(_settings.host, _settings.port)
        open_database(_settings.database_url).dispose()  # migrations run once here, not in every worker
    except ConfigError as exc:
        _refuse(exc)


def post_fork(server, worker):
    """In the new worker, before gunicorn sets its own handlers: the terminal's Ctrl-C is the master's to
    act on (QuietThreadWorker keeps it ignored once gunicorn has set them)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def worker_exit(server, worker):
    """Stop the worker's dispatcher and purge threads cleanly, recording any attempt in hand.

    The app is found through the factory, not `backend.wsgi`: a stop that lands while the worker is
    still importing the app leaves no `backend.wsgi` module, yet the app (and its threads) exists.
    """
    factory = sys.modules.get("backend.factory")
    app = factory.served_app() if factory is not None else None
    if app is not None:
        app.extensions["outage"].close()
        logging.getLogger("backend").info("backend worker %d stopped", worker.pid)


def child_exit(server, worker):
    """In the master, after a worker is gone: its live metric files (the counters stay counted) and wake socket go."""
    multiprocess.mark_process_dead(worker.pid)
    socket_path(os.environ[FOLDER_ENV], worker.pid).unlink(missing_ok=True)


def on_exit(server):
    """The master stops: the workers' metric files and wake sockets go with it."""
    _remove_private_dirs()
