"""Start-up checks of the backend entry points: the database opens, and the port is free (else who holds it)."""

from __future__ import annotations

import errno
import os
import re
import socket
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from backend.config import ConfigError
from backend.database import make_engine
from backend.migrate import upgrade
from common.proc_stat import PARENT, stat_fields

CONNECT_TIMEOUT_SECONDS = 10  # an unreachable PostgreSQL host says so at start instead of hanging


def open_database(database_url: str) -> Engine:
    """An engine on DATABASE_URL with the schema up to date, or ConfigError saying why it cannot open."""
    url = make_url(database_url)
    engine = None
    try:
        if url.get_backend_name() == "postgresql":
            probe = create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
            try:
                with probe.connect() as conn:
                    conn.execute(text("SELECT 1"))
            finally:
                probe.dispose()
        engine = make_engine(database_url)
        upgrade(engine)
        return engine
    except (SQLAlchemyError, OSError) as exc:
        if engine is not None:
            engine.dispose()
        reason = first_line(getattr(exc, "orig", None) or exc)
        if url.password:  # a driver message could quote the URL; the password never leaves
            reason = reason.replace(str(url.password), "***")
        where = url.render_as_string(hide_password=True)
        raise ConfigError("DATABASE_URL", f"cannot open {where}: {reason}") from None


def first_line(exc: BaseException) -> str:
    """An error's first non-blank line, or its type's name."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def check_port_free(host: str, port: int) -> None:
    """Raise ConfigError naming what holds `host:port` when the backend could not bind it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ConfigError("FLASK_HOST", f"cannot resolve {host!r}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as sock:
        # As gunicorn, waitress and werkzeug do, so that connections in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError("FLASK_PORT", f"{host}:{port} is already in use by {port_holder(port)}; "
                                                "stop it or choose another FLASK_PORT") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigError("FLASK_HOST", f"{host} is not an address of this machine") from None
            raise ConfigError("FLASK_PORT", f"cannot listen on {host}:{port}: {exc.strerror}") from None


def port_holder(port: int) -> str:
    """`pid 123 (its program)` of the process listening on TCP `port`, from /proc; else "another program"."""
    inodes = _listening_inodes(port)
    pids = _pids_holding(inodes) if inodes else set()
    # gunicorn's master and workers share one listening socket: name the master, the parent of the rest.
    masters = [pid for pid in sorted(pids) if _parent(pid) not in pids]
    if not masters:
        return "another program"
    pid = masters[0]
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        argv = []
    command = program(argv)
    command = command if len(command) <= 120 else command[:117] + "..."
    return f"pid {pid} ({command})" if command else f"pid {pid}"


_INTERPRETER = re.compile(r"(python|pypy|node|ruby|perl|php|bash|sh|dash)[0-9.]*")
_OPTION_WITH_VALUE = ("-W", "-X")  # an interpreter option whose value is the next argument


def program(argv: list[str]) -> str:
    """The executable's name and, for an interpreter, its script or `-m module`: never any other argument.

    A command line may carry a secret (`--password ...`); the program is what the user needs to find it.
    """
    if not argv or not argv[0]:
        return ""
    name = os.path.basename(argv[0])
    if not _INTERPRETER.fullmatch(name):
        return name
    rest = iter(argv[1:])
    for argument in rest:
        if argument in ("-m", "-c"):
            module = next(rest, "") if argument == "-m" else ""
            return f"{name} {argument} {module}".rstrip()
        if argument in _OPTION_WITH_VALUE:
            next(rest, None)
        elif not argument.startswith("-"):
            return f"{name} {argument}"
    return name


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def _pids_holding(inodes: set[str]) -> set[int]:
    wanted = {f"socket:[{inode}]" for inode in inodes}
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:  # another user's process cannot be looked into: it stays "another program"
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    pids.add(int(entry.name))
                    break
            except OSError:  # closed meanwhile
                continue
    return pids


def _parent(pid: int) -> int | None:
    try:
        return int(stat_fields(pid)[PARENT])
    except (OSError, IndexError, ValueError):
        return None
