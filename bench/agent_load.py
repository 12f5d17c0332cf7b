"""Agent: targets on a fast local site at a 10 s interval, for three rounds and more; and its capacity.

Measures checks/s, scheduling lag (when each check reached the site minus its planned slot,
p50/p99), the agent's CPU (share of a core, and per check) and peak RSS (from /proc). The agent
reports to the real backend under gunicorn. It is paced by design (each target once per interval),
so no request-rate ceiling applies; its capacity is measured instead (--capacity): 1,000, 2,000,
4,000, 8,000, then 16,000 targets every 10 s, until one does not keep up (a planned check of the
measured rounds missing, or p99 lag of 1 s or more); the largest that kept up is reported.

Planned slots: the agent spreads its targets over the interval and logs when its schedule starts
(t0, the "schedule: ... from <UTC time>" line); target i is first due at t0 + offset_i, with the
offsets from `agent.agent.spread_offsets`, and its round k at t0 + offset_i + k x interval. The
k-th arrival of a target is its round k.

    python -m bench.agent_load [--quick] [--targets N] [--interval S] [--rounds K] [--profile OUT]
    python -m bench.agent_load --capacity [--interval S] [--rounds K]
"""

from __future__ import annotations

import argparse
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import requests

from bench.common import (API_KEY, GUNICORN_BACKEND, Gunicorn, Row, answers, base_env, free_port, log,
                          percentile, print_table, start_python, stop, wait_until)

from agent.agent import spread_offsets  # noqa: E402  (bench.common put the repository on sys.path)
from common.proc_stat import STIME, THREADS, UTIME, stat_fields  # noqa: E402

ROUNDS = 3
CAPACITY_STEPS = (1000, 2000, 4000, 8000, 16000)
_SCHEDULE_LINE = re.compile(r"schedule: (\d+) targets in \d+ slots .* from (\S+)$", re.M)


def proc_usage(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far, peak RSS in MB) of a live process, from /proc."""
    fields, tick = stat_fields(pid), os.sysconf("SC_CLK_TCK")
    cpu_s = (int(fields[UTIME]) + int(fields[STIME])) / tick
    log(f"  agent CPU so far: user {int(fields[UTIME]) / tick:.2f}s, "
        f"system {int(fields[STIME]) / tick:.2f}s, threads {fields[THREADS]}")
    status = Path(f"/proc/{pid}/status").read_text()
    hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return cpu_s, hwm_kb / 1024


def schedule_start(agent_log: str) -> float:
    """t0: the unix time the agent's spread schedule starts, from its "schedule:" log line."""
    match = _SCHEDULE_LINE.search(agent_log)
    if match is None:
        raise RuntimeError("the agent logged no 'schedule: ... from <time>' line")
    return datetime.fromisoformat(match.group(2)).timestamp()


def lags(arrivals: list[tuple[str, float]], targets: int, interval_s: float, rounds: int,
         t0: float) -> tuple[list[float], int]:
    """Lag of every check of rounds 0..rounds-1 against its own planned slot, and how many are missing.

    Target /t/i is planned at t0 + spread_offsets(targets, interval)[i] + k x interval in round k.
    """
    offsets = spread_offsets(targets, interval_s)
    by_target: dict[int, list[float]] = {i: [] for i in range(targets)}
    for path, at in arrivals:
        by_target[int(path.rsplit("/", 1)[1])].append(at)
    result, missing = [], 0
    for i, times in by_target.items():
        times.sort()
        for k in range(rounds):
            if k < len(times):
                result.append(times[k] - (t0 + offsets[i] + k * interval_s))
            else:
                missing += 1
    return result, missing


def measure(targets: int, interval_s: float, rounds: int = ROUNDS, profile: Path | None = None) -> dict:
    """Run the agent against the site for `rounds` rounds and more; return what was measured.

    `profile`: record the agent with py-spy meanwhile (a speedscope JSON or an .svg flame graph).
    """
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as name:
        tmp = Path(name)
        site_port = free_port()
        site_url = f"http://127.0.0.1:{site_port}"
        site = start_python(["-m", "bench.target_site", str(site_port)], base_env(tmp), tmp / "site.out")
        try:
            wait_until(lambda: answers(f"{site_url}/health"), 15, message="target site")
            with Gunicorn(tmp, GUNICORN_BACKEND, "backend", BACKEND_WORKERS="2") as backend:
                urls = ",".join(f"{site_url}/t/{i}" for i in range(targets))
                env = base_env(tmp, API_KEY=API_KEY, TARGET_URL=urls, BACKEND_URL=backend.url,
                               CHECK_INTERVAL_SECONDS=str(interval_s), REQUEST_TIMEOUT_SECONDS="5")
                if len(urls) > 100_000:
                    # Linux refuses an environment variable over 128 KiB: list the targets in the
                    # agent's dotenv file instead, as a deployment with this many would.
                    Path(env["ENV_FILE"]).write_text(f"TARGET_URL={urls}\n", encoding="utf-8")
                    del env["TARGET_URL"]
                log(f"agent: {targets} targets every {interval_s:g}s, {rounds} rounds")
                agent = start_python(["agent/agent.py"], env, tmp / "agent.out")
                spy = _py_spy(agent.pid, profile, tmp) if profile else None
                started = time.monotonic()
                try:
                    wait_until(lambda: _arrivals(site_url), 30, 0.1, "the agent's first check")
                    # From here on the agent is checking: imports and start-up are behind it.
                    cpu_first_s, _ = proc_usage(agent.pid)
                    t0 = schedule_start((tmp / "agent.log").read_text(encoding="utf-8"))
                    # The last round ends at t0 + rounds x interval; give its last slot a moment more.
                    time.sleep(max(0.0, t0 + rounds * interval_s + min(1.0, 0.1 * interval_s) - time.time()))
                    if agent.poll() is not None:
                        raise RuntimeError(f"agent exited with {agent.returncode}; see {tmp / 'agent.out'}")
                    cpu_s, peak_rss_mb = proc_usage(agent.pid)
                    wall_s = time.monotonic() - started
                    checks_meanwhile = len(_arrivals(site_url))
                finally:
                    stop(agent, timeout=15)
                    if spy is not None:
                        spy.wait(timeout=60)
                arrivals = _arrivals(site_url)
                stored = _count_events(tmp / "notifications.db")
        finally:
            stop(site)
    lag_s, missing = lags(arrivals, targets, interval_s, rounds, t0)
    window = [at for _, at in arrivals if t0 <= at < t0 + rounds * interval_s]
    result = {
        "targets": targets, "interval_s": interval_s, "missing": missing,
        "checks_per_s": len(window) / (rounds * interval_s), "planned_per_s": targets / interval_s,
        "p50_ms": percentile(lag_s, 50) * 1000, "p99_ms": percentile(lag_s, 99) * 1000,
        "cpu_share": 100 * cpu_s / wall_s, "peak_rss_mb": peak_rss_mb,
        # CPU per check: from the first check on, over every check made meanwhile (the sender included).
        "cpu_per_check_ms": 1000 * (cpu_s - cpu_first_s) / max(1, checks_meanwhile - 1),
    }
    result["kept_up"] = missing == 0 and result["p99_ms"] < 1000
    log(f"  {len(arrivals)} checks arrived ({missing} of the first {rounds} rounds missing), {stored} events "
        f"stored, lag p50 {result['p50_ms']:.0f} ms p99 {result['p99_ms']:.0f} ms max {max(lag_s) * 1000:.0f} ms, "
        f"CPU {cpu_s:.1f}s in {wall_s:.0f}s ({result['cpu_per_check_ms']:.2f} ms per check after start-up), "
        f"peak RSS {peak_rss_mb:.0f} MB; {'kept up' if result['kept_up'] else 'did NOT keep up'}")
    return result


def rows_of(m: dict) -> list[Row]:
    """The summary rows of one measurement."""
    label = f"{m['targets']} targets @ {m['interval_s']:g}s"
    return [
        Row("agent", f"{label}: checks/s (planned {m['planned_per_s']:g}/s, {m['missing']} missing)",
            m["checks_per_s"], "checks/s"),
        Row("agent", f"{label}: scheduling lag p50", m["p50_ms"], "ms"),
        Row("agent", f"{label}: scheduling lag p99", m["p99_ms"], "ms", target="< 1,000 ms", met=m["p99_ms"] < 1000),
        Row("agent", f"{label}: CPU (share of one core)", m["cpu_share"], "%"),
        Row("agent", f"{label}: CPU per check", m["cpu_per_check_ms"], "ms"),
        Row("agent", f"{label}: peak RSS (VmHWM)", m["peak_rss_mb"], "MB", target="< 150 MB",
            met=m["peak_rss_mb"] < 150),
    ]


def run(quick: bool = False, targets: int | None = None, interval_s: float | None = None,
        rounds: int = ROUNDS, profile: Path | None = None) -> list[Row]:
    """One measurement (1000 targets every 10 s; 100 every 2 s when quick); return the summary rows."""
    default_targets, default_interval = (100, 2.0) if quick else (1000, 10.0)
    return rows_of(measure(targets or default_targets, interval_s or default_interval, rounds, profile))


def capacity(steps: tuple[int, ...] = CAPACITY_STEPS, interval_s: float = 10.0, rounds: int = ROUNDS) -> list[Row]:
    """Measure increasing target counts until one does not keep up (a planned check missing, or p99
    lag >= 1 s); return every step's rows and the largest count that kept up."""
    rows, held, tried = [], 0, []
    for targets in steps:
        m = measure(targets, interval_s, rounds)
        rows += rows_of(m)
        tried.append(f"{targets:,}")
        if not m["kept_up"]:
            break
        held = targets
    top = " (the most tried: at least this)" if held == steps[-1] else ""
    rows.append(Row("agent", f"capacity @ {interval_s:g}s: most targets that kept up{top} (tried {', '.join(tried)}; "
                    f"all planned checks made, p99 lag < 1 s)", held, "targets"))
    return rows


def bench_rows(quick: bool = False) -> list[Row]:
    """What `make bench` runs: the capacity ladder; when quick, one short step (100 targets every 2 s)."""
    return capacity((100,), 2.0) if quick else capacity()


def _py_spy(pid: int, out: Path, tmp: Path) -> subprocess.Popen:
    """py-spy recording `pid` (every thread) until it exits, into `out`."""
    fmt = {".svg": "flamegraph", ".txt": "raw"}.get(Path(out).suffix, "speedscope")
    spy = Path(sys.executable).parent / "py-spy"  # next to this Python, in the venv
    spy_bin = str(spy) if spy.exists() else "py-spy"
    with open(tmp / "py-spy.out", "ab") as log_out:
        return subprocess.Popen([spy_bin, "record", "--pid", str(pid), "--rate", "200", "--nonblocking", "--threads", "--gil", "--format", fmt,
                                 "--output", str(Path(out).resolve())], stdout=log_out, stderr=subprocess.STDOUT)


def _arrivals(site_url: str) -> list:
    return requests.get(f"{site_url}/__arrivals", timeout=10).json()


def _count_events(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (100 targets every 2 s)")
    parser.add_argument("--targets", type=int, help="how many targets (default 1000, 100 with --quick)")
    parser.add_argument("--interval", type=float, help="the check interval in seconds (default 10, 2 with --quick)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help=f"rounds measured (default {ROUNDS})")
    parser.add_argument("--profile", type=Path, metavar="OUT",
                        help="record the agent with py-spy into OUT (.svg flame graph, .txt collapsed stacks, else speedscope JSON)")
    parser.add_argument("--capacity", action="store_true",
                        help="measure 1000, 2000, 4000, 8000, 16000 targets until one does not keep up")
    args = parser.parse_args()
    if args.capacity:
        print_table(capacity(interval_s=args.interval or 10.0, rounds=args.rounds))
    else:
        print_table(run(args.quick, args.targets, args.interval, args.rounds, args.profile))
