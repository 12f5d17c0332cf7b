"""The gunicorn worker `make run` uses: gthread, deaf to the terminal's Ctrl-C from its first moment.

A terminal sends SIGINT to every process of the foreground group; the master then sends each
worker SIGQUIT too. gthread's quit handler shuts its thread pool down under a lock that is not
reentrant, so a second signal landing inside the first handler deadlocked the worker for good, and
one landing while the worker was still importing the app cut the import short. A worker stops
when its master says so (SIGQUIT or SIGTERM), once. Nothing here imports the app: the master
loads this class.
"""

import signal

from gunicorn.workers.gthread import ThreadWorker

THREADS = 4  # request threads per worker, for make run and for the benchmark's bare endpoint alike


class QuietThreadWorker(ThreadWorker):
    def init_signals(self):
        super().init_signals()  # gunicorn maps SIGINT to a quick quit here, for every worker class
        signal.signal(signal.SIGINT, signal.SIG_IGN)
