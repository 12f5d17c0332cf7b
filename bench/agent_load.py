"""Agent: 1000 targets on a fast local site at a 10 s interval, for three rounds and more.

Measures checks/s, scheduling lag (when each check reached the site minus its planned slot,
p50/p99), the agent's CPU and peak RSS (from /proc). Ceiling: wrk's request rate against the
same site. The agent reports to the real backend under gunicorn.

Planned slots: the agent's first round starts when its first check arrives (t0); round k of every
target is planned at t0 + k x interval (the agent schedules every target on the same interval from
one `run_all`). The k-th arrival of a target is its round k.

    python -m bench.agent_load [--quick]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import requests

from bench.common import (API_KEY, GUNICORN_BACKEND, Gunicorn, Row, base_env, free_port, log, percentile,
                          print_table, run_load, start_python, stop, wait_until)

ROUNDS = 3


def proc_usage(pid: int) -> tuple[float, float]:
    """(CPU seconds used so far, peak RSS in MB) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    status = Path(f"/proc/{pid}/status").read_text()
    hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return cpu_s, hwm_kb / 1024


def lags(arrivals: list[tuple[str, float]], interval_s: float, rounds: int) -> tuple[list[float], int, float]:
    """Lag of every check of rounds 0..rounds-1, the number of checks missing, and t0."""
    by_target: dict[str, list[float]] = {}
    for path, at in arrivals:
        by_target.setdefault(path, []).append(at)
    t0 = min(at for _, at in arrivals)
    result, missing = [], 0
    for times in by_target.values():
        times.sort()
        for k in range(rounds):
            if k < len(times):
                result.append(times[k] - (t0 + k * interval_s))
            else:
                missing += 1
    return result, missing, t0


def run(quick: bool = False) -> list[Row]:
    """Run the agent against the site for ROUNDS rounds and more; return the summary rows."""
    targets, interval_s = (100, 2.0) if quick else (1000, 10.0)
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as name:
        tmp = Path(name)
        site_port = free_port()
        site_url = f"http://127.0.0.1:{site_port}"
        site = start_python(["-m", "bench.target_site", str(site_port)], base_env(tmp), tmp / "site.out")
        try:
            wait_until(lambda: _answers(f"{site_url}/health"), 15, message="target site")
            with Gunicorn(tmp, GUNICORN_BACKEND, "backend", BACKEND_WORKERS="2") as backend:
                urls = ",".join(f"{site_url}/t/{i}" for i in range(targets))
                env = base_env(tmp, API_KEY=API_KEY, TARGET_URL=urls, BACKEND_URL=backend.url,
                               CHECK_INTERVAL_SECONDS=str(interval_s), REQUEST_TIMEOUT_SECONDS="5")
                log(f"agent: {targets} targets every {interval_s:g}s, {ROUNDS} rounds")
                agent = start_python(["agent/agent.py"], env, tmp / "agent.out")
                started = time.monotonic()
                try:
                    wait_until(lambda: _arrivals(site_url), 30, 0.1, "the agent's first check")
                    # Round ROUNDS-1 is planned at t0 + (ROUNDS-1) x interval; give it most of an interval.
                    time.sleep((ROUNDS - 1) * interval_s + 0.8 * interval_s)
                    if agent.poll() is not None:
                        raise RuntimeError(f"agent exited with {agent.returncode}; see {tmp / 'agent.out'}")
                    cpu_s, peak_rss_mb = proc_usage(agent.pid)
                    wall_s = time.monotonic() - started
                finally:
                    stop(agent, timeout=15)
                arrivals = _arrivals(site_url)
                stored = _count_events(tmp / "notifications.db")
            log("agent: wrk against the same site (ceiling)")
            ceiling = run_load(f"{site_url}/w", 2 if quick else 5, 32, tmp)
        finally:
            stop(site)
    lag_s, missing, t0 = lags(arrivals, interval_s, ROUNDS)
    window = [at for _, at in arrivals if at < t0 + ROUNDS * interval_s]
    checks_per_s = len(window) / (ROUNDS * interval_s)
    planned_per_s = targets / interval_s
    p50_ms, p99_ms = percentile(lag_s, 50) * 1000, percentile(lag_s, 99) * 1000
    log(f"  {len(arrivals)} checks arrived ({missing} of the first {ROUNDS} rounds missing), {stored} events "
        f"stored, lag p50 {p50_ms:.0f} ms p99 {p99_ms:.0f} ms max {max(lag_s) * 1000:.0f} ms, "
        f"CPU {cpu_s:.1f}s in {wall_s:.0f}s, peak RSS {peak_rss_mb:.0f} MB; wrk {ceiling['rps']:.0f} req/s")
    label = f"{targets} targets @ {interval_s:g}s"
    return [
        Row("agent", f"{label}: checks/s (planned {planned_per_s:g}/s, {missing} missing)", checks_per_s, "checks/s",
            ceiling["rps"], "wrk on the same site"),
        Row("agent", f"{label}: scheduling lag p50", p50_ms, "ms"),
        Row("agent", f"{label}: scheduling lag p99", p99_ms, "ms", target="< 1,000 ms", met=p99_ms < 1000),
        Row("agent", f"{label}: CPU (share of one core)", 100 * cpu_s / wall_s, "%"),
        Row("agent", f"{label}: peak RSS (VmHWM)", peak_rss_mb, "MB", target="< 150 MB", met=peak_rss_mb < 150),
    ]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _arrivals(site_url: str) -> list:
    return requests.get(f"{site_url}/__arrivals", timeout=10).json()


def _count_events(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    print_table(run(parser.parse_args().quick))
