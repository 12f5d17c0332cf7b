"""An https (CONNECT) proxy on 127.0.0.1 for the tests: it tunnels to the asked host and records each CONNECT."""

from __future__ import annotations

import select
import socket

from tests.support.servers import LoopbackServer, QuietHandler


class _Tunnel(QuietHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # a client that connects and says nothing does not hold a thread for good

    def do_CONNECT(self):
        proxy: ConnectProxy = self.server  # type: ignore[assignment]
        proxy.connects.append(self.path)
        host, _, port = self.path.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5) as upstream:
            self.send_response(200, "Connection established")
            self.end_headers()
            ends = {self.connection: upstream, upstream: self.connection}
            while not proxy.release.is_set():  # stop() sets it
                ready, _, _ = select.select(list(ends), [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        self.close_connection = True
                        return
                    ends[sock].sendall(data)


class ConnectProxy(LoopbackServer):
    """Answers CONNECT with 200 and pipes the bytes both ways; `url` is what https_proxy takes."""

    def __init__(self):
        super().__init__(_Tunnel)
        self.url = self.url.rstrip("/")
        self.connects: list[str] = []
