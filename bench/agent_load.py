"""Agent: targets on a fast local site at a 10 s interval, for three rounds and more; and its capacity.

Measures checks/s, planned checks made and stored, scheduling lag (when each check started, from
its event's timestamp, minus its planned slot, p50/p99), the agent's CPU (share of a core, and per
check), peak RSS (from /proc) and the backend's CPU per 1,000 checks stored. The agent reports to the
real backend under gunicorn; `measure` also serves bench/speed.py (nginx, a targets file). It is
paced by design (each target once per interval), so no request-rate ceiling applies; its capacity
is measured instead (--capacity): 1,000, 2,000, 4,000, 8,000, then 16,000 targets every 10 s, until
one does not keep up (a planned check of the measured rounds not made, or p99 lag of 1 s or more);
the largest that kept up is reported.

Planned slots: the agent spreads its targets over the interval and logs when its schedule starts
(t0, the "schedule: ... from <UTC time>" line); target i is first due at t0 + offset_i, with the
offsets from `agent.agent.spread_offsets`, and its round k at t0 + offset_i + k x interval. The
k-th check of a target is its round k.

    python -m bench.agent_load [--quick] [--targets N] [--interval S] [--rounds K] [--profile OUT]
    python -m bench.agent_load --capacity [--interval S] [--rounds K]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench.common import (API_KEY, GUNICORN_BACKEND, Gunicorn, Row, base_env, log, percentile, print_table,
                          start_python, stop, tree_cpu_seconds, wait_until)
from bench.agent_profile import thread_cpu_seconds
from bench.target_site import TargetSite

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


def lags(checks: list[tuple[str, float]], targets: int, interval_s: float, rounds: int,
         t0: float) -> tuple[list[float], int]:
    """Lag of every check of rounds 0..rounds-1 against its own planned slot, and how many are missing.

    `checks`: (URL or path ending in /t/<i>, unix time the check started). Target i is planned at
    t0 + spread_offsets(targets, interval)[i] + k x interval in round k; its k-th check is round k.
    """
    offsets = spread_offsets(targets, interval_s)
    by_target: dict[int, list[float]] = {i: [] for i in range(targets)}
    for path, at in checks:
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


def write_targets_file(path: Path, urls: list[str], interval_s: float) -> Path:
    """A targets file (SPEC §8) of one http target per URL, named t<i>, every `interval_s`."""
    lines = [f"defaults:\n  interval: {interval_s:g}\n  timeout: 5\ntargets:\n"]
    lines += [f"  - name: t{i}\n    url: {url}\n" for i, url in enumerate(urls)]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def measure(site, targets: int, interval_s: float, rounds: int = ROUNDS, profile: Path | None = None,
            from_file: bool = False) -> dict:
    """Run the agent on `site`'s /t/<i> paths for `rounds` rounds and more; return what was measured.

    `site`: a running TargetSite or Nginx (its `url`, and `served()`: requests answered so far).
    `from_file`: list the targets in a targets file the backend serves, the agent pulling
    GET /agent/targets (TARGET_URL unset); else in TARGET_URL. `profile`: record the agent with
    py-spy meanwhile (a speedscope JSON, an .svg flame graph, or .txt collapsed stacks).
    Every check counts from the events it made: those the backend stored, and those still in the
    agent's spool when it stopped; each event's timestamp is when its check started.
    """
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as name:
        tmp = Path(name)
        urls = [f"{site.url}/t/{i}" for i in range(targets)]
        backend_env = {"BACKEND_WORKERS": "2"}
        if from_file:
            backend_env["TARGETS_FILE"] = str(write_targets_file(tmp / "targets.yaml", urls, interval_s))
        with Gunicorn(tmp, GUNICORN_BACKEND, "backend", **backend_env) as backend:
            env = base_env(tmp, API_KEY=API_KEY, TARGET_URL="" if from_file else ",".join(urls),
                           BACKEND_URL=backend.url, CHECK_INTERVAL_SECONDS=str(interval_s),
                           REQUEST_TIMEOUT_SECONDS="5", AGENT_NAME="bench",
                           AGENT_TARGETS_CACHE=str(tmp / "targets-cache.json"))
            if len(env["TARGET_URL"]) > 100_000:
                # Linux refuses an environment variable over 128 KiB: list the targets in the
                # agent's dotenv file instead, as a deployment with this many would.
                Path(env["ENV_FILE"]).write_text(f"TARGET_URL={env.pop('TARGET_URL')}\n", encoding="utf-8")
            log(f"agent: {targets:,} targets every {interval_s:g}s from "
                f"{'a targets file (GET /agent/targets)' if from_file else 'TARGET_URL'}, {rounds} rounds")
            served_before = site.served()
            agent = start_python(["agent/agent.py"], env, tmp / "agent.out")
            spy = None
            try:
                wait_until(lambda: site.served() > served_before, 120, 0.1, "the agent's first check")
                # From here on the agent is checking: imports, start-up and its first pull are behind it.
                spy = _py_spy(agent.pid, profile, tmp) if profile else None
                threads_first = thread_cpu_seconds(agent.pid)
                started = time.monotonic()
                cpu_first_s, _ = proc_usage(agent.pid)
                served_first, backend_first_s = site.served(), tree_cpu_seconds(backend.proc.pid)
                stored_first = _count_events(tmp / "notifications.db")
                t0 = schedule_start((tmp / "agent.log").read_text(encoding="utf-8"))
                # The last round ends at t0 + rounds x interval; its last results need a moment more
                # to reach the backend (the sender posts at most every 0.1 s, the backend commits).
                time.sleep(max(0.0, t0 + rounds * interval_s + min(3.0, 0.3 * interval_s) - time.time()))
                if agent.poll() is not None:
                    raise RuntimeError(f"agent exited with {agent.returncode}; see {tmp / 'agent.out'}")
                cpu_s, peak_rss_mb = proc_usage(agent.pid)
                thread_cpu = {tid: cpu - threads_first.get(tid, 0.0) for tid, cpu in thread_cpu_seconds(agent.pid).items()}
                served, backend_s = site.served() - served_first, tree_cpu_seconds(backend.proc.pid) - backend_first_s
                stored_meanwhile = _count_events(tmp / "notifications.db") - stored_first
                wall_s = time.monotonic() - started
            finally:
                stop(agent, timeout=15)
                if spy is not None:
                    spy.wait(timeout=60)
            stored = _stored_checks(tmp / "notifications.db")
        made = stored + _spooled_checks(tmp / "spool.db")
    lag_s, missing = lags([(url, at) for url, at, _ in made], targets, interval_s, rounds, t0)
    _, not_stored = lags([(url, at) for url, at, _ in stored], targets, interval_s, rounds, t0)
    in_rounds = [ok for _, at, ok in made if t0 <= at < t0 + rounds * interval_s]
    planned = targets * rounds
    result = {
        "targets": targets, "interval_s": interval_s, "rounds": rounds, "from_file": from_file,
        "missing": missing, "planned": planned, "made_pct": 100 * (planned - missing) / planned,
        "stored_pct": 100 * (planned - not_stored) / planned, "failed": in_rounds.count(False),
        "checks_per_s": len(in_rounds) / (rounds * interval_s), "planned_per_s": targets / interval_s,
        "p50_ms": percentile(lag_s, 50) * 1000, "p99_ms": percentile(lag_s, 99) * 1000,
        "cpu_share": 100 * (cpu_s - cpu_first_s) / wall_s, "peak_rss_mb": peak_rss_mb,
        # CPU per check: from the first check on, over every check made meanwhile (the sender included).
        "cpu_per_check_ms": 1000 * (cpu_s - cpu_first_s) / max(1, served),
        # The gunicorn master and workers, over the checks they stored meanwhile.
        "backend_cpu_per_1000": 1000 * backend_s / max(1, stored_meanwhile),
        "thread_cpu_s": thread_cpu,  # by thread id, from the first check on: weighs the profile
    }
    result["kept_up"] = missing == 0 and result["p99_ms"] < 1000
    log(f"  {len(made)} checks made ({missing} of the first {rounds} rounds missing, {not_stored} not stored, "
        f"{result['failed']} failed), lag p50 {result['p50_ms']:.0f} ms p99 {result['p99_ms']:.0f} ms "
        f"max {max(lag_s, default=float('nan')) * 1000:.0f} ms, agent CPU {cpu_s - cpu_first_s:.1f}s in {wall_s:.0f}s "
        f"({result['cpu_per_check_ms']:.3f} ms per check), peak RSS {peak_rss_mb:.0f} MB, backend CPU "
        f"{backend_s:.1f}s for {stored_meanwhile} stored; {'kept up' if result['kept_up'] else 'did NOT keep up'}")
    return result


def rows_of(m: dict, bench: str = "agent", rss_goal_mb: int = 150) -> list[Row]:
    """The summary rows of one measurement."""
    label = f"{m['targets']:,} targets @ {m['interval_s']:g}s{' (targets file)' if m['from_file'] else ''}"
    made = m["planned"] - m["missing"]
    return [
        Row(bench, f"{label}: checks/s (planned {m['planned_per_s']:g}/s, {m['missing']} missing, {m['failed']} failed)",
            m["checks_per_s"], "checks/s"),
        Row(bench, f"{label}: planned checks made ({made:,} of {m['planned']:,})", m["made_pct"], "%",
            target=">= 99%", met=m["made_pct"] >= 99),
        Row(bench, f"{label}: planned checks stored in the backend", m["stored_pct"], "%", target=">= 99%",
            met=m["stored_pct"] >= 99),
        Row(bench, f"{label}: scheduling lag p50", m["p50_ms"], "ms"),
        Row(bench, f"{label}: scheduling lag p99", m["p99_ms"], "ms", target="< 1,000 ms", met=m["p99_ms"] < 1000),
        Row(bench, f"{label}: CPU (share of one core)", m["cpu_share"], "%"),
        Row(bench, f"{label}: CPU per check", m["cpu_per_check_ms"], "ms"),
        Row(bench, f"{label}: peak RSS (VmHWM)", m["peak_rss_mb"], "MB", target=f"< {rss_goal_mb} MB",
            met=m["peak_rss_mb"] < rss_goal_mb),
        Row(bench, f"{label}: backend CPU per 1,000 checks stored (cores busy at 1,000 checks/s)",
            m["backend_cpu_per_1000"], "CPU-s"),
    ]


def run(quick: bool = False, targets: int | None = None, interval_s: float | None = None,
        rounds: int = ROUNDS, profile: Path | None = None) -> list[Row]:
    """One measurement (1000 targets every 10 s; 100 every 2 s when quick); return the summary rows."""
    default_targets, default_interval = (100, 2.0) if quick else (1000, 10.0)
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp, TargetSite(Path(tmp)) as site:
        return rows_of(measure(site, targets or default_targets, interval_s or default_interval, rounds, profile))


def capacity(steps: tuple[int, ...] = CAPACITY_STEPS, interval_s: float = 10.0, rounds: int = ROUNDS) -> list[Row]:
    """Measure increasing target counts until one does not keep up (a planned check missing, or p99
    lag >= 1 s); return every step's rows and the largest count that kept up."""
    rows, held, tried = [], 0, []
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp, TargetSite(Path(tmp)) as site:
        for targets in steps:
            m = measure(site, targets, interval_s, rounds)
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


def py_spy_binary() -> str | None:
    """py-spy next to this Python (in the venv), else on PATH, else None."""
    spy = Path(sys.executable).parent / "py-spy"
    return str(spy) if spy.exists() else shutil.which("py-spy")


def _py_spy(pid: int, out: Path, tmp: Path) -> subprocess.Popen:
    """py-spy recording `pid` (every thread) until it exits, into `out`.

    Not --gil: pycurl releases the GIL while libcurl works, and that work is what is measured.
    """
    fmt = {".svg": "flamegraph", ".txt": "raw"}.get(Path(out).suffix, "speedscope")
    spy_bin = py_spy_binary()
    if spy_bin is None:
        raise RuntimeError("py-spy is not installed (pip install -r requirements-test.txt)")
    with open(tmp / "py-spy.out", "ab") as log_out:
        return subprocess.Popen([spy_bin, "record", "--pid", str(pid), "--rate", "200", "--nonblocking", "--threads",
                                 "--format", fmt, "--output", str(Path(out).resolve())],
                                stdout=log_out, stderr=subprocess.STDOUT)


def _count_events(db: Path) -> int:
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def _stored_checks(db: Path) -> list[tuple[str, float, bool]]:
    """(target URL, unix time the check started, success) of every event the backend stored."""
    with sqlite3.connect(db, timeout=10) as conn:
        rows = conn.execute("SELECT target_url, checked_at, is_success FROM events").fetchall()
    return [(url, datetime.fromisoformat(at).replace(tzinfo=timezone.utc).timestamp(), bool(ok)) for url, at, ok in rows]


def _spooled_checks(spool: Path) -> list[tuple[str, float, bool]]:
    """The same of the events still in the agent's spool (made, not yet sent)."""
    if not spool.exists():
        return []
    with sqlite3.connect(spool, timeout=10) as conn:
        events = [json.loads(body) for (body,) in conn.execute("SELECT body FROM spooled_events")]
    return [(e["target_url"], datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")).timestamp(),
             e["is_success"]) for e in events]


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
