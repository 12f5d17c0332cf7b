"""The bare-endpoint ceiling under waitress, with `python backend/app.py`'s settings: host and port
from FLASK_HOST / FLASK_PORT (backend.config), threads=8.

    python -m bench.bare_waitress
"""

import sys

from waitress import create_server

from backend.config import load_settings, read_environment
from bench.bare_app import app


def main() -> int:
    settings = load_settings(read_environment())
    server = create_server(app, host=settings.host, port=settings.port, threads=8)  # as backend/app.py
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
