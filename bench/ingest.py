"""Ingest: POST /events under gunicorn, one event per request and batches of 500, against its ceilings.

The bodies are bench/event_mix.py's: each connection is one agent with its own targets (50 when it
sends one event per request, 500 when it sends a batch of 500, one round of them), some
flapping, so failures, dedup, alert openings and recoveries are all in the mix (FAILURE_THRESHOLD=3);
how many alerts opened and resolved during each run is counted from the database and reported.
Ceilings, measured in the same run: the same gunicorn settings serving a bare Flask endpoint that
parses the same JSON and returns 201 (bench/bare_app.py), and raw SQLite inserts of the same rows
into the same schema, in one process. Load comes from wrk (or bench/loadgen.py) in its own process.

    python -m bench.ingest [--quick]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from bench import event_mix
from bench.common import (API_KEY, GUNICORN_BACKEND, GUNICORN_BARE, Gunicorn, Row, insert_rows, log, next_run,
                          print_table, run_load)

# events per request, targets per agent, connections (= agents). A batch is one round over an
# agent's targets, the largest the agent's sender makes; one event per request gets fewer targets
# so that its flapping ones reach the threshold within the run too.
CASES = {"single": (1, 50, 8), "batch": (500, 500, 4)}
THRESHOLD = 3


def _tally(db: Path) -> dict[str, int]:
    """Alerts opened and resolved, and failed checks stored, so far."""
    with sqlite3.connect(db, timeout=30) as conn:
        return dict(zip(("opened", "resolved", "events", "failed"), conn.execute(
            "SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM alerts WHERE status = 'RESOLVED'), "
            "(SELECT count(*) FROM events), (SELECT count(*) FROM events WHERE is_success = 0)").fetchone()))


def drive(server: Gunicorn, tmp: Path, duration_s: float, db: Path | None = None) -> dict[str, dict]:
    """One-per-request and batch load against one server; a short warm-up first.

    With `db` (the backend's database), each result also says what the run stored: alerts opened
    and resolved, events and failed checks.
    """
    headers = {"Content-Type": "application/json", "X-API-Key": API_KEY}
    url = f"{server.url}/events"
    run_load(url, 1, 8, tmp, "POST", headers, mix=(1, 50))  # warm-up: imports, pools, page cache
    results = {}
    for name, (per_request, targets, connections) in CASES.items():
        before = _tally(db) if db else None
        r = results[name] = run_load(url, duration_s, connections, tmp, "POST", headers,
                                     mix=(per_request, targets))
        if db:
            after = _tally(db)
            r.update({key: after[key] - before[key] for key in after})
        log(f"  {server.name} {name}: {r['rps']:.0f} req/s p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms "
            f"non-2xx {r['non2xx']} errors {r['errors']} ({r['tool']})"
            + (f"; stored {r['events']} events ({r['failed']} failed), {r['opened']} alerts opened, "
               f"{r['resolved']} resolved" if db else ""))
    return results


def raw_sqlite(tmp: Path, duration_s: float) -> dict[str, float]:
    """Rows per second inserting the same rows with sqlite3: one per transaction, then 500 per transaction."""
    from backend.database import make_engine
    from backend.migrate import upgrade
    from backend.store import check_time_text, utc_text

    path = tmp / "raw.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)  # the backend's own schema and indexes
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-32768"):  # as backend
        conn.execute(f"PRAGMA {pragma}")
    run = next_run()

    def rows(first: int, n: int, targets: int):  # the rows backend/ingest.py writes for the same events
        now = datetime.now(timezone.utc)
        stamp, precise = utc_text(now), check_time_text(now)
        for k in range(first, first + n):
            e = event_mix.event(run, 1, targets, k, stamp)
            yield {"target_url": e["target_url"], "status_code": e["status_code"],
                   "response_time_ms": e["response_time_ms"], "timestamp": stamp, "is_success": int(e["is_success"]),
                   "error_message": e["error_message"], "received_at": stamp, "event_uid": e["event_uid"],
                   "is_late": 0, "checked_at": precise}

    rates, done = {}, 0
    for name, (per_tx, targets, _) in CASES.items():
        count, started = 0, time.perf_counter()
        deadline = started + duration_s
        while time.perf_counter() < deadline and count < 5_000_000:
            conn.execute("BEGIN IMMEDIATE")
            insert_rows(conn, "events", rows(done, per_tx, targets))  # building rows is the backend's work too
            conn.execute("COMMIT")
            count += per_tx
            done += per_tx
        rates[name] = count / (time.perf_counter() - started)
        log(f"  raw sqlite {name} ({per_tx}/transaction): {rates[name]:.0f} rows/s")
    conn.close()
    return rates


def run(quick: bool = False) -> list[Row]:
    """Measure ingest and its ceilings; return the summary rows."""
    duration_s = 1 if quick else 10
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as name:
        tmp = Path(name)
        log(f"ingest: backend (gunicorn, BACKEND_WORKERS=2, FAILURE_THRESHOLD={THRESHOLD})")
        with Gunicorn(tmp, GUNICORN_BACKEND, "backend", BACKEND_WORKERS="2",
                      FAILURE_THRESHOLD=str(THRESHOLD)) as server:
            backend = drive(server, tmp, duration_s, tmp / "notifications.db")
        log("ingest: bare Flask endpoint (same gunicorn settings)")
        with Gunicorn(tmp, GUNICORN_BARE, "bare", BACKEND_WORKERS="2") as server:
            bare = drive(server, tmp, duration_s)
        log("ingest: raw SQLite inserts")
        raw = raw_sqlite(tmp, min(duration_s, 5))
    rows = []
    for name, (per_req, targets, connections) in CASES.items():
        b, c = backend[name], bare[name]
        shape = "1 event/request" if per_req == 1 else f"batches of {per_req}"
        label = f"{shape} ({connections} x {targets} targets)"
        failed = b["non2xx"] + b["errors"]
        events_s = b["rps"] * per_req
        rows.append(Row("ingest", f"{label}: events/s" + (f" ({failed} failed requests)" if failed else ""),
                        events_s, "ev/s", c["rps"] * per_req, "bare endpoint",
                        target=">= 60% of bare" if per_req == 1 else ">= 20,000 ev/s",
                        met=events_s >= 0.6 * c["rps"] * per_req if per_req == 1 else events_s >= 20_000))
        rows.append(Row("ingest", f"{label}: events/s vs raw SQLite", events_s, "ev/s", raw[name],
                        f"sqlite3, {per_req}/tx"))
        for p in ("p50", "p99"):
            rows.append(Row("ingest", f"{label}: {p} latency", b[f"{p}_ms"], "ms",
                            c[f"{p}_ms"], "bare endpoint"))
        rows.append(Row("ingest", f"{label}: failed checks among those stored",
                        100 * b["failed"] / max(1, b["events"]), "%"))
        rows.append(Row("ingest", f"{label}: alerts opened during the run", b["opened"], "alerts"))
        rows.append(Row("ingest", f"{label}: alerts resolved during the run", b["resolved"], "alerts"))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    print_table(run(parser.parse_args().quick))
