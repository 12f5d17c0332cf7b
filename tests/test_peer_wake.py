"""gunicorn workers wake each other's dispatchers (backend/peer_wake.py): an alert goes out at once,
whichever worker stored it and whichever holds the channel's lease."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import requests

from backend.peer_wake import PeerWake, socket_path
from tests.backend_fixtures import event
from tests.support.procs import Gunicorn, base_env, start, stop, wait_until
from tests.test_metrics_backend import counted_by, metrics_dir, worker_pids

pytestmark = pytest.mark.timeout(120)

# A worker that listens in a folder and prints a line each time another process wakes it.
_LISTENER = """
import sys, time
from backend.peer_wake import PeerWake
PeerWake(sys.argv[1], lambda: print("woken", flush=True))
print("ready", flush=True)
time.sleep(60)
"""


def _listener(tmp_path: Path, name: str, started: list[subprocess.Popen]) -> tuple[subprocess.Popen, Path]:
    """A process listening in `tmp_path` (added to `started`, to be stopped); what it printed goes to `<name>.out`."""
    out = tmp_path / f"{name}.out"
    proc = start(["-c", _LISTENER, str(tmp_path)], base_env(tmp_path), out)
    started.append(proc)
    wait_until(lambda: _said(out, "ready") == 1, 20, message=f"{name} bound its socket")
    return proc, out


def _said(out: Path, line: str) -> int:
    return out.read_text().splitlines().count(line) if out.exists() else 0


def test_a_wake_reaches_every_other_process_and_never_the_sender(tmp_path):
    listeners: list[subprocess.Popen] = []
    woken_here = []
    here = PeerWake(tmp_path, lambda: woken_here.append(1))
    try:
        first, first_out = _listener(tmp_path, "first", listeners)
        second, second_out = _listener(tmp_path, "second", listeners)
        assert socket_path(tmp_path, first.pid).exists() and socket_path(tmp_path, second.pid).exists()
        here.notify()
        wait_until(lambda: _said(first_out, "woken") == 1 and _said(second_out, "woken") == 1, 10,
                   message="both other processes woken")
        stop(first, timeout=10)  # dies without closing: its socket stays behind, refusing
        here.notify()
        wait_until(lambda: _said(second_out, "woken") == 2, 10, message="the live one woken again")
        assert woken_here == []
    finally:
        here.close()
        for proc in listeners:
            stop(proc, timeout=10)
    assert not socket_path(tmp_path, os.getpid()).exists()  # close() removed our own


def _wake_sockets(pid: int) -> list[Path]:
    """The wake sockets a process has bound, from the kernel's list of Unix sockets."""
    links = [fd.readlink().name for fd in Path(f"/proc/{pid}/fd").iterdir()]
    inodes = {link.removeprefix("socket:[").removesuffix("]") for link in links if link.startswith("socket:[")}
    found = []
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes and Path(fields[7]).name == f"wake-{pid}.sock":
            found.append(Path(fields[7]))
    return found


def _console_holder(server: Gunicorn) -> int | None:
    """The pid of the worker holding the console channel's lease (leases.holder_id: host:ns:pid:start:random)."""
    rows = server.rows("SELECT holder FROM leases WHERE name = 'dispatcher:CONSOLE' AND holder IS NOT NULL")
    return int(rows[0][0].rsplit(":", 4)[2]) if rows else None


def test_an_alert_stored_by_the_worker_without_the_lease_is_sent_at_once(tmp_path):
    # The dispatchers look at the outbox once a minute unless woken, and renew their lease (and look)
    # every 150 s: only a wake sends within the test's wait.
    server = Gunicorn(tmp_path, BACKEND_WORKERS="2", FAILURE_THRESHOLD="1", NOTIFY_POLL_SECONDS="60",
                      NOTIFY_LEASE_SECONDS="300")
    try:
        wait_until(lambda: len(worker_pids(server)) == 2, 30, message="both workers serving")
        pids = worker_pids(server)
        [one], [two] = _wake_sockets(pids[0]), _wake_sockets(pids[1])
        assert one.parent == two.parent and oct(one.parent.stat().st_mode)[-3:] == "700"
        wait_until(lambda: _console_holder(server) in pids, 30, message="a worker holding the console channel")
        [other] = [pid for pid in pids if pid != _console_holder(server)]
        folder = metrics_dir(other)
        sent = []

        def stored_by_the_other() -> bool:
            """One failure of a new target opens an alert; on a new connection, so either worker may take it."""
            before = counted_by(folder, other, tmp_path / "before")
            response = requests.post(f"{server.url}/events", json=event(f"https://t{len(sent)}.example/", ok=False),
                                     headers={"X-API-Key": server.env["API_KEY"], "Connection": "close"},
                                     timeout=30)
            assert response.status_code == 201 and response.json()["alert"]["status"] == "OPEN", response.text
            sent.append(response.json()["alert"]["id"])
            return counted_by(folder, other, tmp_path / "after") > before

        # The last alert is the other worker's: the lease holder has had no alert of its own since to wake it.
        wait_until(stored_by_the_other, 30, interval=0, message="an alert stored by the worker without the lease")
        wait_until(lambda: server.rows("SELECT count(*) FROM deliveries WHERE status = 'SENT'")[0][0] == len(sent),
                   20, message="every alert's console notice sent")
        assert server.rows("SELECT count(*) FROM deliveries")[0][0] == len(sent)
        assert _console_holder(server) != other  # sent by the holder, woken: the lease never moved
    finally:
        server.stop()
    assert not one.parent.exists()  # the master removed the folder on exit
