"""Run every benchmark (`make bench`) and print one summary table with the date and the box.

    python -m bench.run_all [--quick] [--only ingest,agent,alert,queries,peers,speed]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone

from bench import agent_load, alert_latency, ingest, peers, queries, speed
from bench.common import Row, have_wrk, log, print_table

BENCHMARKS = {"ingest": ingest.run, "agent": agent_load.bench_rows, "alert": alert_latency.run, "queries": queries.run,
              "peers": peers.run, "speed": speed.run}


def box() -> str:
    """`nproc` and the CPU model, as the README records them."""
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model}, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks and print the summary table.")
    parser.add_argument("--quick", action="store_true", help="a short smoke run of each")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated: " + ", ".join(BENCHMARKS))
    args = parser.parse_args(argv)
    started = time.monotonic()
    rows: list[Row] = []
    failed = []
    for name in args.only.split(","):
        try:
            rows.extend(BENCHMARKS[name](quick=args.quick))
        except Exception:  # one broken benchmark must not hide the others' figures
            failed.append(name)
            log(f"{name} failed:\n{traceback.format_exc()}")
    elapsed = time.monotonic() - started
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; {box()}; load: "
          f"{'wrk' if have_wrk() else 'Python load generator (wrk absent)'}; total {elapsed:.0f} s"
          f"{'; quick smoke run' if args.quick else ''}\n")
    print_table(rows)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
