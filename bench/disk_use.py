"""What retention means for disk: bytes per stored event and per rollup row in SQLite, measured.

A database made by the backend's migrations (today's schema and indexes) gets realistic checks of
file targets, through raw sqlite3 in one transaction: 1,000 targets named `service-N`, URLs
`https://service-N.example.com/health`, a random event_uid each, agent `web-1`, response times
log-normal around 80 ms, 2% timeouts with their message, over whole hours. After VACUUM, the growth of the file over
the empty schema divided by the events stored is the bytes per event. The backend's own roller then
rolls them up; the events are deleted, the file VACUUMed again, and the growth over the empty
schema divided by the rollup rows is the bytes per rollup row (an hour of a target). Measured at
one check a minute and one every 10 s, since denser hours fill more histogram buckets.

    python -m bench.disk_use [--events 200000]  (about 30 s)
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.common import insert_rows, log

from backend.database import make_engine  # noqa: E402  (bench.common puts the repository on sys.path)
from backend.migrate import upgrade  # noqa: E402
from backend.rollups import Roller  # noqa: E402
from backend.time_text import check_time_text, utc_text  # noqa: E402

TARGETS = 1000
RETENTION_DAYS = (7, 30)
FLEETS = ((1_000, 60), (10_000, 60), (1_000, 10), (10_000, 10))


def vacuumed_size(db: Path) -> int:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")
    conn.close()
    return db.stat().st_size


def whole_hours(count: int, interval_seconds: int) -> int:
    """How many events fill whole hours of TARGETS targets (at least one hour): rollup rows are then full."""
    per_hour = TARGETS * 3600 // interval_seconds
    return max(1, count // per_hour) * per_hour


def realistic_events(count: int, interval_seconds: int):
    """Checks of TARGETS targets round-robin, one every `interval_seconds` each, from the top of an hour."""
    rng = random.Random(8)
    rounds = count // TARGETS
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    for k in range(rounds):
        for t in range(TARGETS):
            moment = start + timedelta(seconds=k * interval_seconds + t * interval_seconds / TARGETS)
            down = rng.random() < 0.02
            yield {"target_url": f"https://service-{t}.example.com/health", "status_code": None if down else 200,
                   "response_time_ms": None if down else int(rng.lognormvariate(4.4, 0.5)),
                   "timestamp": utc_text(moment), "is_success": 0 if down else 1,
                   "error_message": "Request timed out after 5000ms" if down else None,
                   "received_at": utc_text(moment), "event_uid": str(uuid.uuid4()), "is_late": 0,
                   "checked_at": check_time_text(moment), "target": f"service-{t}", "agent": "web-1"}


def measure(tmp: Path, count: int, interval_seconds: int) -> tuple[float, float, int]:
    """(bytes per event, bytes per rollup row, rollup rows) at one check per `interval_seconds`."""
    count = whole_hours(count, interval_seconds)
    db = tmp / f"disk-{interval_seconds}.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()
    empty = vacuumed_size(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    insert_rows(conn, "events", realistic_events(count, interval_seconds))
    conn.execute("COMMIT")
    conn.close()
    per_event = (vacuumed_size(db) - empty) / count
    engine = make_engine(f"sqlite:///{db}")
    roller = Roller(engine, 3600, start=False)
    started = time.perf_counter()
    rolled = roller.run_once()
    roll_seconds = time.perf_counter() - started
    roller.close()
    engine.dispose()
    conn = sqlite3.connect(db, isolation_level=None)
    rows = conn.execute("SELECT COUNT(*) FROM rollups").fetchone()[0]
    conn.execute("DELETE FROM events")
    conn.close()
    per_row = (vacuumed_size(db) - empty) / rows
    log(f"  every {interval_seconds}s: {count:,} events -> {per_event:.0f} B/event; {rolled:,} rolled in "
        f"{roll_seconds:.1f} s ({rolled / roll_seconds:,.0f} events/s) into {rows:,} rollup rows -> {per_row:.0f} B/row")
    return per_event, per_row, rows


def table(per_event: float, per_row: dict[int, float]) -> str:
    """Disk for events and rollups by fleet and RETENTION_DAYS, as Markdown."""
    lines = ["| targets | every | events/day | " + " | ".join(f"RETENTION_DAYS={d}" for d in RETENTION_DAYS)
             + " | rollups (35 days) |", "|---:|---:|---:|" + "---:|" * (len(RETENTION_DAYS) + 1)]
    for targets, interval in FLEETS:
        per_day = targets * 86400 // interval
        rollups = targets * 24 * 35 * per_row[interval]
        cells = [gib(per_day * days * per_event + rollups) for days in RETENTION_DAYS]
        lines.append(f"| {targets:,} | {interval} s | {per_day:,} | " + " | ".join(cells) + f" | {gib(rollups)} |")
    return "\n".join(lines)


def gib(size: float) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000,
                        help="events per measurement, cut to whole hours (default 200,000: 180,000 at 60 s, "
                             "360,000 at 10 s)")
    args = parser.parse_args()
    per_row = {}
    with tempfile.TemporaryDirectory(prefix="bench-disk-") as name:
        first_per_event, per_row[60], _ = measure(Path(name), args.events, 60)
        _, per_row[10], _ = measure(Path(name), args.events, 10)
    print(f"{first_per_event:.0f} bytes per event (SQLite, today's indexes, after VACUUM); rollups "
          f"{per_row[60]:.0f} bytes per target-hour at 60 s ({per_row[60] * 24 / 1024:.1f} KiB per target-day), "
          f"{per_row[10]:.0f} at 10 s ({per_row[10] * 24 / 1024:.1f} KiB)\n")
    print(table(first_per_event, per_row) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
