"""Run the backend: `python backend/app.py` (or `cd backend && python app.py`) (SPEC §1)."""

import logging
import signal
import sys
from pathlib import Path

# Import the package from the repository root whatever the current directory is, and keep this
# script's own folder off sys.path so nothing in it can shadow a library.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from backend.config import ConfigError, load_settings, read_environment  # noqa: E402
from backend.factory import create_app, create_served_app  # noqa: E402
from backend.targets_file import TargetsFileError  # noqa: E402
from backend.startup import check_port_free  # noqa: E402
from waitress import create_server  # noqa: E402

__all__ = ["WAITRESS_THREADS", "create_app", "main"]
log = logging.getLogger("backend")
WAITRESS_THREADS = 8  # request threads, for this server and for the benchmark's bare endpoint alike


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds the server loop the same way Ctrl-C does


def main() -> int:
    """Check settings, port, database and targets file (exit 2 with one line on a bad one), then serve until SIGINT or SIGTERM."""
    try:
        settings = load_settings(read_environment())
        check_port_free(settings.host, settings.port)
        app = create_served_app(settings)
    except (ConfigError, TargetsFileError) as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while starting: stop quietly, nothing is serving yet
        return 130
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        if settings.debug:  # Flask's development server, with its debugger, only when asked for
            app.run(host=settings.host, port=settings.port, debug=True, use_reloader=False, threaded=True)
        else:
            server = create_server(app, host=settings.host, port=settings.port, threads=WAITRESS_THREADS)
            server.run()
    except KeyboardInterrupt:
        pass
    finally:
        # One stop is enough: a second Ctrl-C or SIGTERM must not break off the clean-up with a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        app.extensions["outage"].close()
        log.info("backend stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
