"""One check in flight: its spec, its curl handle, and what the callbacks collected so far."""

from __future__ import annotations

from datetime import datetime, timezone

import pycurl

from agent.checks.spec import CheckSpec
from agent.checks.conditions import MAX_BODY_BYTES

_END_OF_HEADERS = (b"\r\n", b"\n")


class Transfer:
    """The state of one check between its start and libcurl's verdict (callbacks run on the engine thread)."""

    __slots__ = ("spec", "handle", "timestamp", "cainfo", "stop_at_headers", "stopped", "status_line",
                 "has_location", "body", "body_bytes")

    def __init__(self, spec: CheckSpec, handle: pycurl.Curl):
        self.spec = spec
        self.handle = handle
        self.timestamp = datetime.now(timezone.utc)
        self.cainfo: str | None = None  # the CA bundle held from CaBundles, released when the check ends
        self.stop_at_headers = False
        self.stopped = False  # we ended the transfer on purpose (headers in, or the body cap reached)
        self.status_line = b""
        self.has_location = False
        self.body: list[bytes] = []
        self.body_bytes = 0

    def on_header(self, line: bytes):
        """libcurl's HEADERFUNCTION: keep the status line; end the transfer once the final headers are in."""
        # pycurl refuses getinfo() inside a callback: the status and Location come from the lines.
        if line[:5] == b"HTTP/":
            self.status_line = line
            self.has_location = False
        elif line[:9].lower() == b"location:":
            self.has_location = True
        elif self.stop_at_headers and line in _END_OF_HEADERS:
            code = self.status_code()
            if code < 200 or (300 <= code < 400 and self.has_location):
                return None  # an interim answer, or a redirect libcurl is about to follow
            # The answer is in: its body is not worth a byte, nor a wait (a body that drips forever).
            self.stopped = True
            return 0
        return None

    def on_body(self, chunk: bytes):
        """libcurl's WRITEFUNCTION: keep at most MAX_BODY_BYTES of the body, then end the transfer."""
        room = MAX_BODY_BYTES - self.body_bytes
        if len(chunk) < room and not self.stop_at_headers:
            self.body.append(chunk)
            self.body_bytes += len(chunk)
            return None
        if not self.stop_at_headers:
            self.body.append(chunk[:room])
            self.body_bytes += room
        self.stopped = True
        return 0

    def status_code(self) -> int:
        """The status of the last status line seen, 0 when there was none."""
        parts = self.status_line.split(None, 2)
        try:
            return int(parts[1])
        except (IndexError, ValueError):
            return 0

    def reason(self) -> str:
        """The status line's reason phrase (HTTP/1.x; HTTP/2 has none)."""
        parts = self.status_line.decode("latin-1").split(None, 2)
        return parts[2].strip() if len(parts) > 2 else ""
