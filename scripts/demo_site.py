"""A tiny local web site that goes down and comes back on a cycle, for `make demo` (no internet needed)."""

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class DemoSite(ThreadingHTTPServer):
    """Up for `up_seconds` (200), then down for `down_seconds` (503), forever."""

    daemon_threads = True

    def __init__(self, port: int, up_seconds: float, down_seconds: float):
        super().__init__(("127.0.0.1", port), _Handler)
        self.up_seconds, self.down_seconds = up_seconds, down_seconds
        self.started = time.monotonic()

    def is_up(self) -> bool:
        """Where we are in the up/down cycle right now."""
        elapsed = (time.monotonic() - self.started) % (self.up_seconds + self.down_seconds)
        return elapsed < self.up_seconds


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        up = self.server.is_up()
        body = b"demo site is up\n" if up else b"demo site is down\n"
        self.send_response(200 if up else 503)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _announce(site: DemoSite, stop: threading.Event) -> None:
    was_up = None
    while not stop.wait(0.2):
        up = site.is_up()
        if up != was_up:
            span = site.up_seconds if up else site.down_seconds
            print(f"[demo site] now {'UP (200)' if up else 'DOWN (503)'} for {span:g}s", flush=True)
            was_up = up


def main() -> int:
    """Serve the demo site until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--up", type=float, default=15.0, help="seconds up in each cycle")
    parser.add_argument("--down", type=float, default=25.0, help="seconds down in each cycle")
    args = parser.parse_args()
    site = DemoSite(args.port, args.up, args.down)
    stop = threading.Event()
    threading.Thread(target=_announce, args=(site, stop), daemon=True).start()
    try:
        site.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        site.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
