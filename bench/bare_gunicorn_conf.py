"""gunicorn settings for the bare-endpoint ceiling: the same as backend/gunicorn_conf.py (workers, gthread, 4 threads)."""

from backend.config import load_settings, read_environment

_settings = load_settings(read_environment())

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
worker_class = "gthread"
threads = 4
timeout = 60
accesslog = None
errorlog = "-"
loglevel = "warning"
