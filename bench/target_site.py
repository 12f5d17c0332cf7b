"""A fast local target site for the agent benchmark, in its own process: `python -m bench.target_site PORT`.

An asyncio server that answers every GET with 200 over keep-alive HTTP/1.1 (bodiless requests
only, which is all the agent and wrk send), and records when each request under /t/ arrived
(time.time()), so the benchmark can compare a check's actual start with its planned slot.
GET /__arrivals returns them as JSON [[path, unix_time], ...]; other paths are answered, not recorded.
"""

import asyncio
import json
import sys
import time

_arrivals: list[tuple[str, float]] = []
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


class _Site(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes):
        now = time.time()
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            parts = head.split(b" ", 2)
            path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
            if path.startswith("/t/"):
                _arrivals.append((path, now))
            if path == "/__arrivals":
                body = json.dumps(_arrivals).encode()
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
            else:
                self.transport.write(_OK)
        if len(self.buffer) > 65536:  # not a request this site understands
            self.transport.close()


async def _serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Site, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
