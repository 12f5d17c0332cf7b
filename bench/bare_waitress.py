"""The bare-endpoint ceiling under waitress, with `python backend/app.py`'s settings: host and port
from FLASK_HOST / FLASK_PORT (backend.config), and its WAITRESS_THREADS.

    python -m bench.bare_waitress
"""

import sys

from waitress import create_server

from backend.app import WAITRESS_THREADS
from backend.config import load_settings, read_environment
from bench.bare_app import app


def main() -> int:
    settings = load_settings(read_environment())
    server = create_server(app, host=settings.host, port=settings.port, threads=WAITRESS_THREADS)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
