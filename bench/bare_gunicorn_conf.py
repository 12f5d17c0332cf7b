"""gunicorn settings for the bare-endpoint ceiling: the same as backend/gunicorn_conf.py (workers, worker class, threads)."""

from backend.config import load_settings, read_environment
from backend.gunicorn_worker import THREADS, QuietThreadWorker

_settings = load_settings(read_environment())

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = QuietThreadWorker
threads = THREADS
timeout = 60
accesslog = None
errorlog = "-"
loglevel = "warning"
