"""A fake backend for the agent's tests: a real HTTP server on 127.0.0.1 scripted per request.

Tests import its fixtures by name: `from tests.support.fake_backend import backend, session  # noqa: F401`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass

import pytest
import requests

from tests.support.servers import LoopbackServer, QuietHandler


@dataclass(frozen=True)
class Answer:
    """A scripted reply with a body: a dict is sent as JSON, a str as an HTML page."""
    status: int
    body: dict | str


def refusal(code: str, *, index: int | None = None, status: int = 400) -> Answer:
    """The backend's coded refusal of an event (SPEC §4): `details.code`, and for a batch `details.index`."""
    details: dict = {"code": code}
    if index is not None:
        details["index"] = index
    return Answer(status, {"error": f"scripted {code}", "details": details})


def foreign(status: int) -> Answer:
    """What a proxy in front of the backend answers: an HTML page, no JSON, no code."""
    return Answer(status, f"<html><head><title>{status} Refused by proxy</title></head>"
                          f"<body><center><h1>{status}</h1></center><hr>nginx</body></html>")


def invalid(uid: str):
    """A script entry: a batch holding the event `uid` is refused as `invalid_event` at its index; else stored."""
    def answer(events: list[dict]):
        uids = [e.get("event_uid") for e in events]
        return refusal("invalid_event", index=uids.index(uid)) if uid in uids else 201
    return answer


class _BackendHandler(QuietHandler):
    def do_POST(self):
        server: FakeBackend = self.server  # type: ignore[assignment]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw or b"null")
        events = body if isinstance(body, list) else [body]
        with server.lock:
            server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            scripted = server.script.pop(0) if server.script else server.status
            answer = scripted(events) if callable(scripted) else scripted
            if not isinstance(answer, Answer):
                answer = Answer(answer, {"error": f"scripted {answer}"})
            status = answer.status
            if status in (200, 201):
                # Like the backend with idempotency keys: each event_uid is stored once, and a batch
                # whose events are all stored already is answered 200.
                new = [e for e in events if e.get("event_uid") not in server.stored_uids]
                status = 201 if new else 200
                for event in new:
                    server.stored_uids.add(event.get("event_uid"))
                    server.stored.append(event)
        if status < 300:
            self.reply_json(status, {"events": [{"event_id": n, "alert": None} for n in range(len(events))]})
        elif isinstance(answer.body, str):
            self._reply_html(status, answer.body)
        else:
            self.reply_json(status, answer.body)

    def _reply_html(self, status: int, page: str) -> None:
        data = page.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class FakeBackend(LoopbackServer):
    """A stand-in for `POST /events` taking JSON arrays with event_uid.

    Answers the entries of `script` in order, then `status`; an entry is a status code, an
    `Answer`, or a function of the request's events returning one. A bare error status is answered
    `{"error": "scripted <status>"}`, without a code. Stored events go to `stored`, once per uid.
    """

    def __init__(self, port: int = 0, script: list | None = None, status: int | Answer = 201):
        super().__init__(_BackendHandler, port)
        self.script = list(script or [])
        self.status = status
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.stored: list[dict] = []
        self.stored_uids: set[str] = set()
        self.url = self.url.rstrip("/")  # a BACKEND_URL, as users write it

    def received(self) -> list[dict]:
        with self.lock:
            return list(self.requests)

    def received_events(self) -> list[dict]:
        """Every event of every request, in arrival order, duplicates included."""
        return [event for request in self.received() for event in request["body"]]

    def stored_events(self) -> list[dict]:
        with self.lock:
            return list(self.stored)


@pytest.fixture
def backend():
    server = FakeBackend().start()
    yield server
    server.stop()


@pytest.fixture
def session():
    with requests.Session() as s:
        yield s
