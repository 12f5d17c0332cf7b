"""A receiver on 127.0.0.1 for apprise's json:// and form:// targets: records each notice, answers as told."""

from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs

import pytest

from tests.support.servers import LoopbackServer, QuietHandler


class _Handler(QuietHandler):
    def do_POST(self):
        server: AppriseReceiver = self.server  # type: ignore[assignment]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
        if self.headers.get("Content-Type", "").startswith("application/json"):
            body = json.loads(raw)
        else:  # form:// posts application/x-www-form-urlencoded
            body = {key: values[0] for key, values in parse_qs(raw).items()}
        with server.lock:
            server.notices.append({"path": self.path, "body": body, "authorization": self.headers.get("Authorization")})
            status = server.statuses.pop(0) if server.statuses else server.status
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class AppriseReceiver(LoopbackServer):
    """Records every POST in `notices` (path, decoded body); answers `status`, or the next of `statuses`."""

    def __init__(self):
        super().__init__(_Handler)
        self.lock = threading.Lock()
        self.notices: list[dict] = []
        self.status = 200
        self.statuses: list[int] = []

    def received(self) -> list[dict]:
        with self.lock:
            return list(self.notices)


@pytest.fixture
def receiver():
    """A started AppriseReceiver, stopped at teardown (import this fixture into a test module)."""
    server = AppriseReceiver().start()
    yield server
    server.stop()
