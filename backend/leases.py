"""Named leases in the database: at most one process works a channel or runs the purge at a time.

A holder id names the process precisely enough to tell, from another process on the same
machine, that it is gone: host name, PID namespace, PID, the process's start time, and a random
suffix. Host name and PID alone are not enough: containers share host names and reuse PIDs.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine

from backend import store
from backend.database import write_transaction
from backend.time_text import precise_text
from common.proc_stat import START_TIME, stat_fields

log = logging.getLogger(__name__)


def _pid_namespace() -> str:
    """This process's PID namespace (the inode of /proc/self/ns/pid), or "?" where /proc has none."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "?"


def _start_time(pid: int) -> str | None:
    """When process `pid` started, in clock ticks since boot (/proc/<pid>/stat field 22); None if gone."""
    try:
        fields = stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:  # /proc hidden from us (hidepid): we cannot tell
        return "?"
    return fields[START_TIME] if len(fields) > START_TIME else "?"


def holder_id() -> str:
    """A new holder id for this process: host:pid-namespace:pid:start-time:random."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{_pid_namespace()}:{pid}:{_start_time(pid) or '?'}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder: str) -> bool:
    """Whether `holder` was a process in this machine's PID namespace that is gone (or whose PID was reused)."""
    parts = holder.rsplit(":", 4)
    if len(parts) != 5:
        return False  # not an id we made: only its expiry frees it
    host, namespace, pid, started, _ = parts
    if host != socket.gethostname() or namespace == "?" or namespace != _pid_namespace():
        return False  # another machine or container: we cannot see its processes
    if not pid.isdigit() or started == "?":
        return False
    now_started = _start_time(int(pid))
    return now_started is None or now_started not in ("?", started)


class Lease:
    """One named lease taken, renewed and given up by one holder."""

    def __init__(self, engine: Engine, name: str, seconds: float):
        self.engine = engine
        self.name = name
        self.seconds = seconds
        self.holder = holder_id()

    def take(self) -> float:
        """Take or renew the lease; the monotonic time it lasts until, or 0.0 when another holds it."""
        began, now = time.monotonic(), datetime.now(timezone.utc)
        expires = now + timedelta(seconds=self.seconds)
        with write_transaction(self.engine) as conn:
            held = store.acquire_lease(conn, self.name, self.holder, precise_text(now),
                                       precise_text(expires), is_dead=holder_is_dead)
        return began + self.seconds if held else 0.0

    def release(self) -> None:
        """Give the lease up at once, so another process can take over without waiting for expiry."""
        try:
            with write_transaction(self.engine) as conn:
                store.release_lease(conn, self.name, self.holder)
        except Exception:  # at shutdown: the lease expires by itself
            log.warning("could not release lease %s; it will expire by itself", self.name)
