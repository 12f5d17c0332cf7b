"""An https (CONNECT) proxy on 127.0.0.1 for the tests: it tunnels to the asked host and records each CONNECT."""

from __future__ import annotations

import select
import socket
import socketserver
import threading


class _Tunnel(socketserver.StreamRequestHandler):
    timeout = 5  # a client that connects and says nothing does not hold a thread for good

    def handle(self):
        proxy: ConnectProxy = self.server  # type: ignore[assignment]
        request = self.rfile.readline(65536).decode("latin-1").split()
        while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
            pass  # the request's headers
        if len(request) != 3 or request[0] != "CONNECT":
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        proxy.connects.append(request[1])
        host, _, port = request[1].rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5) as upstream:
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            ends = {self.connection: upstream, upstream: self.connection}
            while not proxy.stopping.is_set():
                ready, _, _ = select.select(list(ends), [], [], 0.1)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    ends[sock].sendall(data)


class ConnectProxy(socketserver.ThreadingTCPServer):
    """An https proxy on 127.0.0.1: answers CONNECT with 200 and pipes the bytes both ways."""

    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.connects: list[str] = []
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> "ConnectProxy":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
