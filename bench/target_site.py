"""A fast local target site for the agent benchmark, in its own process: `python -m bench.target_site PORT`.

An asyncio server that answers every GET with 200 over keep-alive HTTP/1.1 (bodiless requests
only, which is all the agent and wrk send), and counts the requests under /t/: GET /__count
returns how many it answered so far.
`TargetSite` starts it as a child process for a benchmark.
"""

import asyncio
import sys
from pathlib import Path

import requests

from bench.common import ChildProcess, answers, base_env, free_port, start_python

_served = 0
_OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"


class _Site(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes):
        global _served
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            parts = head.split(b" ", 2)
            path = parts[1].decode("latin-1") if len(parts) > 1 else "/"
            if path.startswith("/t/"):
                _served += 1
            if path == "/__count":
                body = str(_served).encode()
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


class TargetSite(ChildProcess):
    """This site as a child process on a free 127.0.0.1 port, stopped by PID; a context manager."""

    name = "target site"

    def __init__(self, tmp: Path):
        self.tmp = Path(tmp)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self):
        return start_python(["-m", "bench.target_site", str(self.port)], base_env(self.tmp), self.tmp / "site.out")

    def is_ready(self) -> bool:
        return answers(f"{self.url}/health")

    def served(self) -> int:
        """Requests under /t/ answered so far."""
        return requests.get(f"{self.url}/__count", timeout=10).json()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
