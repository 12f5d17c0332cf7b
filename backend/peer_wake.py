"""Waking the dispatchers of the other workers of one gunicorn master, on this machine.

A channel's lease sits in one worker (dispatch.py). An alert committed by another worker used to
wait for the lease holder's next look at the outbox (every 0.2 s: about 100 ms on average), as the
worker that committed it could wake only its own dispatcher. Here every worker
binds a Unix datagram socket, `wake-<pid>.sock`, in a folder the master made for this run
(private, 0700; gone when the master exits); a worker that committed new deliveries sends one byte
to each of the others, and each one's listening thread wakes its own dispatcher. Losing a wake
costs only the poll's wait: a send never blocks (a full queue already holds a wake), a dead
worker's socket refuses it (the master removes that socket when it reaps the worker), and a
process without the folder (one server process, or tests) polls as before.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

FOLDER_ENV = "OUTAGE_WAKE_DIR"  # set by gunicorn_conf.py in the master, inherited by its workers
_PREFIX, _SUFFIX = "wake-", ".sock"


def socket_path(folder: str | Path, pid: int) -> Path:
    """Where the worker with this pid listens."""
    return Path(folder) / f"{_PREFIX}{pid}{_SUFFIX}"


class PeerWake:
    """This process's wake socket in `folder`: `notify()` wakes the others; their wakes call `on_wake`."""

    def __init__(self, folder: str | Path, on_wake: Callable[[], None]):
        self.folder = Path(folder)
        self.path = socket_path(folder, os.getpid())
        self._on_wake = on_wake
        self._closing = False
        self.path.unlink(missing_ok=True)  # a socket left by an earlier process with this pid
        self._in = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._in.bind(str(self.path))
        except OSError:
            self._in.close()
            self._out.close()
            raise
        self._out.setblocking(False)
        self._thread = threading.Thread(target=self._listen, daemon=True, name="peer-wake")
        self._thread.start()

    def notify(self) -> None:
        """Wake every other worker's dispatcher (new deliveries were committed); never blocks, never raises."""
        try:
            names = os.listdir(self.folder)
        except OSError:
            return  # the master is gone, and its folder with it
        for name in names:
            if not (name.startswith(_PREFIX) and name.endswith(_SUFFIX)) or name == self.path.name:
                continue
            peer = self.folder / name
            try:
                self._out.sendto(b"w", str(peer))
            except BlockingIOError:
                pass  # its queue is full: it has wakes waiting already
            except OSError as exc:  # a worker that died, or is stopping: it looks at the outbox itself
                log.debug("could not wake %s: %s", peer, exc)

    def _listen(self) -> None:
        while True:
            try:
                self._in.recv(64)
            except OSError:
                return  # closed
            if self._closing:
                return
            self._on_wake()

    def close(self) -> None:
        """Stop listening and remove this process's socket."""
        self._closing = True
        try:
            self._out.sendto(b"x", str(self.path))  # unblocks the listening thread
        except OSError:
            pass
        self._thread.join(timeout=2)
        self._in.close()
        self._out.close()
        self.path.unlink(missing_ok=True)
