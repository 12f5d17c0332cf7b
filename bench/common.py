"""Shared helpers for the benchmarks: percentiles, processes stopped by PID, gunicorn and waitress, wrk, result rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common.proc_stat import PARENT, STIME, UTIME, stat_fields  # noqa: E402
from tests.support.procs import base_env as _test_env  # noqa: E402
from tests.support.procs import free_port, stop, wait_until  # noqa: E402,F401


def base_env(tmp: Path, **overrides: str) -> dict[str, str]:
    """The tests' isolated environment, always on a SQLite file in `tmp` (even under make test-postgres)."""
    return _test_env(tmp, **{"DATABASE_URL": f"sqlite:///{tmp / 'notifications.db'}", **overrides})

API_KEY = "bench-key-0123456789"
GUNICORN_BACKEND = ["-m", "gunicorn", "-c", "backend/gunicorn_conf.py", "backend.wsgi:app"]
GUNICORN_BARE = ["-m", "gunicorn", "-c", "bench/bare_gunicorn_conf.py", "bench.bare_app:app"]
WAITRESS_BACKEND = ["backend/app.py"]
WAITRESS_BARE = ["-m", "bench.bare_waitress"]


@dataclass
class Row:
    """One line of the summary table: a result, the ceiling it is measured against, and the target."""

    bench: str
    metric: str
    value: float
    unit: str
    ceiling: float | None = None  # same unit as value; ratio = value / ceiling
    ceiling_name: str = ""
    target: str = ""
    met: bool | None = None  # None when the issue sets no target for this figure

    @property
    def ratio(self) -> float | None:
        return self.value / self.ceiling if self.ceiling else None


def percentile(values, p: float) -> float:
    """The nearest-rank p-th percentile (0 < p <= 100) of `values`; nan when empty."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "-"
    if x != x:  # nan
        return "n/a"
    if isinstance(x, int):  # a count
        text = f"{x:,}"
    else:
        text = f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}" if abs(x) >= 1 else f"{x:.3f}"
    return f"{text}{'' if unit.startswith('/') else ' '}{unit}".strip()


def print_table(rows: list[Row], out=sys.stdout) -> None:
    """The summary as a Markdown table: result, ceiling, ratio, target, met."""
    out.write("| bench | metric | result | ceiling | ratio | target | met |\n")
    out.write("|---|---|---:|---:|---:|---|---|\n")
    for r in rows:
        ceiling = f"{fmt(r.ceiling, r.unit)} ({r.ceiling_name})" if r.ceiling is not None else "-"
        ratio = "-" if r.ratio is None else f"{r.ratio:.0%}" if r.ratio >= 0.1 else f"{r.ratio:.2%}"
        met = "-" if r.met is None else ("yes" if r.met else "**no**")
        out.write(f"| {r.bench} | {r.metric} | {fmt(r.value, r.unit)} | {ceiling} | {ratio} | {r.target or '-'} | {met} |\n")
    out.flush()


def save_rows(rows: list[Row], path: Path) -> None:
    path.write_text(json.dumps([asdict(r) for r in rows], indent=1))


def load_rows(path: Path) -> list[Row]:
    return [Row(**d) for d in json.loads(path.read_text())]


def log(message: str) -> None:
    """Progress to stderr, so stdout holds only the results."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def answers(url: str) -> bool:
    """True when GET `url` answers 200 within a second."""
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process so far, from /proc/<pid>/stat."""
    fields = stat_fields(pid)
    return (int(fields[UTIME]) + int(fields[STIME])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """cpu_seconds of a live process and of its children now alive (a gunicorn master and its workers)."""
    total = cpu_seconds(pid)
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if int(stat_fields(entry.name)[PARENT]) == pid:
                    total += cpu_seconds(int(entry.name))
            except OSError:  # it exited meanwhile
                pass
    return total


def start_python(args: list[str], env: dict[str, str], log_path: Path, pipe: bool = False) -> subprocess.Popen:
    """Start `python <args>` from the repository root in its own session, output to `log_path`
    (or to a pipe the caller reads, with `pipe=True`); stop it with stop(proc), by PID."""
    out = subprocess.PIPE if pipe else open(log_path, "ab")
    try:
        return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if not pipe:
            out.close()


def start_command(cmd: list[str], log_path: Path) -> subprocess.Popen:
    """Start a binary (a peer, nginx) in its own session, output to `log_path`; stop it with stop(proc), by PID."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


class ChildProcess:
    """A server a benchmark starts as its child and stops by PID; a context manager.

    A subclass sets `name`, `start()` (the Popen) and `is_ready()`; __enter__ waits (bounded) until
    it is ready, and stops it again if it exits first or never gets ready.
    """

    name = "server"
    ready_timeout = 30.0
    stop_timeout = 10.0
    proc: subprocess.Popen | None = None

    def start(self) -> subprocess.Popen:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def __enter__(self):
        self.proc = self.start()
        try:
            wait_until(lambda: self.proc.poll() is not None or self.is_ready(), self.ready_timeout, 0.1, self.name)
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.proc.returncode} before it was ready")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            stop(self.proc, timeout=self.stop_timeout)


class PythonServer(ChildProcess):
    """`python <args>` serving the backend or the bare app on a free port (FLASK_PORT), ready when /health answers."""

    server = "python"  # which server it is, as the benchmarks label their rows
    stop_timeout = 20.0
    ready_timeout = 60.0  # a targets file of 50,000 is read and stored first

    def __init__(self, tmp: Path, args: list[str], name: str, pipe: bool = False, **env: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args, self.name, self.pipe = args, name, pipe
        self.log_path = tmp / f"{name}.out"
        self.env = base_env(tmp, FLASK_PORT=str(self.port), API_KEY=API_KEY, **env)

    def start(self) -> subprocess.Popen:
        return start_python(self.args, self.env, self.log_path, pipe=self.pipe)

    def is_ready(self) -> bool:
        return answers(f"{self.url}/health")


class Gunicorn(PythonServer):
    """gunicorn serving `args` (GUNICORN_BACKEND: `make run`'s server, or GUNICORN_BARE)."""

    server = "gunicorn"


class Waitress(PythonServer):
    """waitress serving `args` (WAITRESS_BACKEND: `python backend/app.py`, threads=8, or WAITRESS_BARE)."""

    server = "waitress"


# --- load generation: wrk with a Lua script, or the bounded Python generator when wrk is absent ---
# A body is either a template (or a list of them, taken in turn), whose @UID@ tokens each request
# replaces with fresh UUIDs (as the agent sends a fresh event_uid with every result), or the ingest
# benchmark's event mix (bench/event_mix.py: `mix[0]` events per request over `mix[1]` targets, one
# agent per connection).

_WRK_SCRIPT = """
wrk.method = "%(method)s"
%(headers)s
local templates = {%(templates)s}
local counter = 0
local threads_made = 0
%(mix)s
function setup(thread)
  threads_made = threads_made + 1
  thread:set("tid", threads_made)
end
function request()
  counter = counter + 1
  if make_body then return wrk.format(nil, nil, nil, make_body()) end
  local n = 0
  local body = (templates[(counter - 1) %% #templates + 1]:gsub("@UID@", function()
    n = n + 1
    return string.format("%%08x-%%04x-4000-8000-%%012x", %(run)d * 256 + tid, n, counter)
  end))
  return wrk.format(nil, nil, nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format("WRK_RESULT %%d %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write,
    summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""
_runs = 0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None and os.environ.get("BENCH_NO_WRK") != "1"


def next_run() -> int:
    """A number for the next load run, unique in this process (it keeps uids and mix targets apart)."""
    global _runs
    _runs += 1
    return _runs % 0xFFFFFF


def run_load(url: str, duration_s: float, connections: int, workdir: Path, method: str = "GET",
             headers: dict[str, str] | None = None, template: str | list[str] = "", mix: tuple[int, int] | None = None,
             run: int | None = None) -> dict:
    """Drive `url` for `duration_s` from a separate process (wrk, else bench/loadgen.py).

    `mix` (events per request, targets per agent): POST the event mix instead of `template`, with one
    wrk thread per connection (each connection one agent, one request in flight); `run` numbers its
    targets (see next_run).
    Returns requests, requests/s, p50/p99 latency in ms, responses >= 400 (non2xx) and socket errors.
    """
    run = next_run() if run is None else run
    headers = headers or {}
    templates = [template] if isinstance(template, str) else template
    if have_wrk():
        from bench import event_mix

        script = workdir / f"load_{run}.lua"
        lua_headers = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
        script.write_text(_WRK_SCRIPT % {"method": method, "headers": lua_headers, "run": run,
                                         "templates": ", ".join(f"[==[{t}]==]" for t in templates),
                                         "mix": event_mix.lua(run, *mix) if mix else ""})
        threads = connections if mix else min(2, connections)
        cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--timeout", "10s",
               "-s", str(script), url]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60, cwd=workdir)
        line = next((x for x in out.stdout.splitlines() if x.startswith("WRK_RESULT")), None)
        if line is None:
            raise RuntimeError(f"wrk gave no result: {out.stdout[-500:]} {out.stderr[-500:]}")
        n, dur_us, status_err, sock_err, timeouts, p50_us, p99_us = map(int, line.split()[1:])
        return {"tool": "wrk", "requests": n, "rps": n / (dur_us / 1e6), "p50_ms": p50_us / 1000,
                "p99_ms": p99_us / 1000, "non2xx": status_err, "errors": sock_err + timeouts}
    spec_path = workdir / f"load_{run}.json"
    spec_path.write_text(json.dumps({"url": url, "duration_s": duration_s, "connections": connections,
                                     "method": method, "headers": headers, "templates": templates,
                                     "mix": mix, "run": run}))
    out = subprocess.run([sys.executable, "-m", "bench.loadgen", str(spec_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=duration_s + 60)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr[-800:]}")
    return {"tool": "python", **json.loads(out.stdout)}


def insert_rows(conn, table: str, rows) -> None:
    """executemany `rows` (dicts, all with the same keys) into `table` with raw sqlite3.

    Only the keys the table has are written, so a column the benchmark knows but the schema
    dropped is harmless; a NOT NULL column without a default that the rows do not fill stops
    the benchmark with a clear message instead of a bare IntegrityError.
    """
    iterator = iter(rows)
    first = next(iterator, None)
    if first is None:
        return
    info = conn.execute(f"PRAGMA table_info({table})").fetchall()  # cid, name, type, notnull, default, pk
    have = {row[1] for row in info}
    missing = [row[1] for row in info if row[3] and row[4] is None and not row[5] and row[1] not in first]
    if missing:
        raise RuntimeError(f"bench/ does not fill {table}.{', '.join(missing)} (NOT NULL in the schema): update it")
    columns = [k for k in first if k in have]
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"

    def tuples():
        yield tuple(first[c] for c in columns)
        for row in iterator:
            yield tuple(row[c] for c in columns)
    conn.executemany(sql, tuples())
