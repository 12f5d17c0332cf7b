"""A webhook receiver on 127.0.0.1 that verifies signatures with the README's own example code."""

from __future__ import annotations

import threading
import time

from scripts.webhook_receiver_example import Receiver
from tests.support.servers import LoopbackServer


class _RecordingReceiver(Receiver):
    def log_message(self, *args):  # keep pytest output readable
        pass

    @property
    def secret(self) -> bytes:  # the test's, instead of the environment's
        return self.server.secret.encode()

    def do_POST(self):
        server: WebhookReceiver = self.server  # type: ignore[assignment]
        with server.lock:
            server.requests.append({"path": self.path, "headers": dict(self.headers), "at": time.monotonic()})
            forced = server.statuses.pop(0) if server.statuses else None
        if forced is None:
            return super().do_POST()  # verifies the signature and the timestamp, or answers 401
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(forced)
        for name, value in server.extra_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def notice(self, notice: dict) -> None:
        with self.server.lock:
            self.server.notices.append(notice)


class WebhookReceiver(LoopbackServer):
    """Records every request; `notices` holds the verified ones. `statuses` is a queue of forced answers."""

    def __init__(self, secret: str):
        super().__init__(_RecordingReceiver)
        self.secret = secret
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.notices: list[dict] = []
        self.statuses: list[int] = []  # answered (unverified) before falling back to the example's logic
        self.extra_headers: dict[str, str] = {}

    def verified_notices(self) -> list[dict]:
        with self.lock:
            return list(self.notices)
