"""Real local HTTP servers the tests drive: the loopback base, a toggleable target site, a fake Bot API."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer(ThreadingHTTPServer):
    """A real HTTP server on a free 127.0.0.1 port (or `port`), served from a daemon thread.

    `start()` returns the server; `stop()` lets held requests go (`release`), shuts it down and
    joins its thread with a bound. Subclasses and tests keep their state as attributes.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0):
        super().__init__(("127.0.0.1", port), handler)
        self.release = threading.Event()  # handlers that hold a request wait on this
        self.url = f"http://127.0.0.1:{self.server_port}/"
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and can answer JSON."""

    def log_message(self, *args):  # keep pytest output readable
        pass

    def reply_json(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _TargetHandler(QuietHandler):
    def do_GET(self):
        server: TargetServer = self.server  # type: ignore[assignment]
        server.hits += 1
        if server.mode == "hang":
            # Hold the connection open past any sane client timeout, but stop when the test ends.
            server.release.wait(server.hang_seconds)
            return
        if server.delay_seconds:  # a slow site: answers, late (released early when the test ends)
            server.release.wait(server.delay_seconds)
        self.send_response(server.status)
        self.send_header("Content-Type", "text/plain")
        body = f"status {server.status}\n".encode()
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class TargetServer(LoopbackServer):
    """A target site on 127.0.0.1 whose answer a test changes mid-run.

    `mode` is "status" (answer `status`, after `delay_seconds`) or "hang" (never answer); `stop()` makes
    the port refuse.
    """

    def __init__(self, port: int = 0):
        super().__init__(_TargetHandler, port)
        self.mode = "status"
        self.status = 200
        self.hits = 0
        self.hang_seconds = 30.0
        self.delay_seconds = 0.0  # how long each answer waits

    def set_status(self, status: int) -> None:
        self.mode, self.status = "status", status

    def hang(self) -> None:
        self.release.clear()
        self.mode = "hang"


class _TelegramHandler(QuietHandler):
    def do_POST(self):
        server: FakeTelegram = self.server  # type: ignore[assignment]
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        method = self.path.rsplit("/", 1)[-1]
        token = self.path.split("/")[1][len("bot"):] if self.path.startswith("/bot") else None
        payload = _parse_body(raw, self.headers.get("Content-Type", ""))
        two_way = {"getUpdates": server.get_updates, "answerCallbackQuery": server.answer_callback_query,
                   "editMessageText": server.edit_message_text}.get(method)
        if method == "getUpdates" and server.poll_error is not None:
            code, description = server.poll_error
            return self.reply_json(code, {"ok": False, "error_code": code, "description": description})
        if two_way is not None:  # kept apart from `requests` and `modes`, which are about sending
            result = two_way(payload)
            try:
                return self.reply_json(200, {"ok": True, "result": result})
            except (BrokenPipeError, ConnectionResetError):
                return None  # a poller that stopped while its long poll was held
        with server.lock:
            server.requests.append({"method": method, "token": token, "payload": payload})
            mode = server.modes.pop(0) if server.modes else server.mode
        if mode == "hang":
            server.release.wait(server.hang_seconds)
            return
        if mode == "fail":
            return self.reply_json(500, {"ok": False, "error_code": 500, "description": "Internal Server Error"})
        if mode == "flood":
            return self.reply_json(429, {"ok": False, "error_code": 429,
                                     "description": "Too Many Requests: retry after 1",
                                     "parameters": {"retry_after": server.retry_after}})
        if method == "getMe":
            return self.reply_json(200, {"ok": True, "result": {"id": 1, "is_bot": True, "first_name": "fake",
                                                            "username": "fake_bot"}})
        with server.lock:
            server.next_message_id += 1
            message_id = server.next_message_id
            server.messages.append({"message_id": message_id, **payload,
                                    "reply_markup": _markup(payload.get("reply_markup"))})
        chat_id = payload.get("chat_id")
        self.reply_json(200, {"ok": True, "result": {
            "message_id": message_id, "date": int(time.time()),
            "chat": {"id": int(chat_id) if str(chat_id).lstrip("-").isdigit() else 1, "type": "private"},
            "text": payload.get("text", ""),
        }})


def _markup(value) -> dict | None:
    """reply_markup as a dict (PTB sends it as a JSON string in a form field)."""
    return json.loads(value) if isinstance(value, str) else value


def _parse_body(raw: bytes, content_type: str) -> dict:
    if "json" in content_type:
        return json.loads(raw or b"{}")
    from urllib.parse import parse_qsl
    return dict(parse_qsl(raw.decode()))


class FakeTelegram(LoopbackServer):
    """A local stand-in for the Bot API: records every request, answers like Telegram.

    `mode` is "ok", "fail" (500), "flood" (429 with retry_after) or "hang"; `modes` is a
    queue of one-shot modes used before falling back to `mode`. Both apply to sending only.

    Two-way (SPEC §10): `press()` queues a button press as Telegram would; getUpdates long-polls
    for it with Telegram's offset semantics (updates below the offset are confirmed and dropped);
    answerCallbackQuery and editMessageText are recorded in `answers` and `edits`, an edit also
    changing the message in `messages`. `polls_at_once_max` is the most getUpdates calls seen in
    flight together (Telegram itself refuses a second one with 409 Conflict). `poll_error`, a
    (status, description) pair, makes getUpdates fail.
    """

    def __init__(self):
        super().__init__(_TelegramHandler)
        self.mode = "ok"
        self.modes: list[str] = []
        self.retry_after = 1
        self.hang_seconds = 30.0
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.messages: list[dict] = []
        self.next_message_id = 1000
        self.base_url = f"{self.url}bot"
        self.poll_error: tuple[int, str] | None = None
        self.updates: list[dict] = []  # not yet confirmed
        self.next_update_id = 500
        self.polls: list[dict] = []  # each getUpdates asked: its offset, and the update ids it got
        self.polls_now = 0
        self.polls_at_once_max = 0
        self.answers: list[dict] = []
        self.edits: list[dict] = []
        self._new_update = threading.Condition(self.lock)

    def sent_messages(self) -> list[dict]:
        with self.lock:
            return list(self.messages)

    def press(self, message: dict, data: str, chat_id: int | None = None, user_id: int = 4242,
              username: str | None = "alice") -> int:
        """Queue a press of the button carrying `data` under `message` (a sent one), by @username; its update id."""
        with self.lock:
            self.next_update_id += 1
            text = next((m.get("text", "") for m in self.messages if m["message_id"] == message["message_id"]), "")
            user = {"id": user_id, "is_bot": False, "first_name": "Alice"}
            if username:
                user["username"] = username
            chat = int(message["chat_id"]) if chat_id is None else chat_id
            self.updates.append({"update_id": self.next_update_id, "callback_query": {
                "id": f"cb{self.next_update_id}", "from": user, "chat_instance": "1", "data": data,
                "message": {"message_id": message["message_id"], "date": int(time.time()), "text": text,
                            "chat": {"id": chat, "type": "private"}}}})
            self._new_update.notify_all()
            return self.next_update_id

    def get_updates(self, payload: dict) -> list[dict]:
        offset, timeout = int(payload.get("offset") or 0), float(payload.get("timeout") or 0)
        deadline = time.monotonic() + min(timeout, 30.0)
        with self.lock:
            self.polls_now += 1
            self.polls_at_once_max = max(self.polls_at_once_max, self.polls_now)
            try:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]  # confirmed: forgotten
                while not self.updates and not self.release.is_set() and time.monotonic() < deadline:
                    self._new_update.wait(min(0.05, max(0.0, deadline - time.monotonic())))
                self.polls.append({"offset": offset, "got": [u["update_id"] for u in self.updates]})
                return list(self.updates)
            finally:
                self.polls_now -= 1

    def answer_callback_query(self, payload: dict) -> bool:
        with self.lock:
            self.answers.append(payload)
        return True

    def edit_message_text(self, payload: dict) -> dict:
        with self.lock:
            self.edits.append({**payload, "reply_markup": _markup(payload.get("reply_markup"))})
            for message in self.messages:
                if str(message["message_id"]) == str(payload["message_id"]) and \
                        str(message["chat_id"]) == str(payload["chat_id"]):
                    message.update(text=payload["text"], reply_markup=_markup(payload.get("reply_markup")))
            chat_id = int(payload["chat_id"])
        return {"message_id": int(payload["message_id"]), "date": int(time.time()), "text": payload["text"],
                "chat": {"id": chat_id, "type": "private"}}
