"""Ingest: POST /events under gunicorn (one event per request, and batches of 100), against its ceilings.

Ceilings, measured in the same run: the same gunicorn settings serving a bare Flask endpoint that
parses the same JSON and returns 201 (bench/bare_app.py), and raw SQLite inserts of the same rows
into the same schema, in one process. Load comes from wrk (or bench/loadgen.py) in its own process.

    python -m bench.ingest [--quick]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from bench.common import (API_KEY, GUNICORN_BACKEND, GUNICORN_BARE, Gunicorn, Row, insert_rows, log, print_table,
                          run_load)

BATCH = 100
CONNECTIONS = 8  # 2 workers x 4 threads: every server thread has a request in hand
TARGETS = 10


def event(index: int, uid: str, timestamp: str) -> dict:
    """A successful check result, as the agent sends it (with its event_uid)."""
    return {"target_url": f"https://service-{index % TARGETS}.example.com/health", "timestamp": timestamp,
            "is_success": True, "status_code": 200, "response_time_ms": 42 + index % 50,
            "error_message": None, "event_uid": uid}


def templates() -> tuple[str, str]:
    """Bodies for one event and for a batch of 100; wrk fills each @UID@ with a fresh UUID."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    single = json.dumps(event(0, "@UID@", now))
    batch = json.dumps([event(i, "@UID@", now) for i in range(BATCH)])
    return single, batch


def drive(server: Gunicorn, tmp: Path, duration_s: float) -> dict[str, dict]:
    """One-per-request and batch load against one server; a short warm-up first."""
    single, batch = templates()
    headers = {"Content-Type": "application/json", "X-API-Key": API_KEY}
    url = f"{server.url}/events"
    run_load(url, 1, CONNECTIONS, tmp, "POST", headers, single)  # warm-up: imports, pools, page cache
    results = {}
    for name, body in (("single", single), ("batch", batch)):
        results[name] = run_load(url, duration_s, CONNECTIONS, tmp, "POST", headers, body)
        r = results[name]
        log(f"  {server.name} {name}: {r['rps']:.0f} req/s p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms "
            f"non-2xx {r['non2xx']} errors {r['errors']} ({r['tool']})")
    return results


def raw_sqlite(tmp: Path, duration_s: float) -> dict[str, float]:
    """Rows per second inserting the same rows with sqlite3: one per transaction, then 100 per transaction."""
    from backend.database import init_db, make_engine
    from backend.store import check_time_text, utc_text

    path = tmp / "raw.db"
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)  # the backend's own schema and indexes
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "cache_size=-32768"):  # as backend
        conn.execute(f"PRAGMA {pragma}")
    now = datetime.now(timezone.utc)
    stamp, precise = utc_text(now), check_time_text(now)

    def rows(n):  # the row backend/ingest.py writes for the same event
        return [{"target_url": f"https://service-{i % TARGETS}.example.com/health", "status_code": 200,
                 "response_time_ms": 42 + i % 50, "timestamp": stamp, "is_success": 1, "error_message": None,
                 "received_at": stamp, "event_uid": str(uuid.uuid4()), "is_late": 0, "checked_at": precise}
                for i in range(n)]

    rates = {}
    for name, per_tx in (("single", 1), ("batch", BATCH)):
        done, started = 0, time.perf_counter()
        deadline = started + duration_s
        while time.perf_counter() < deadline and done < 5_000_000:
            chunk = rows(per_tx)  # uuid generation is part of what the backend does too
            conn.execute("BEGIN IMMEDIATE")
            insert_rows(conn, "events", chunk)
            conn.execute("COMMIT")
            done += per_tx
        rates[name] = done / (time.perf_counter() - started)
        log(f"  raw sqlite {name} ({per_tx}/transaction): {rates[name]:.0f} rows/s")
    conn.close()
    return rates


def run(quick: bool = False) -> list[Row]:
    """Measure ingest and its ceilings; return the summary rows."""
    duration_s = 2 if quick else 10
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as name:
        tmp = Path(name)
        log("ingest: backend (gunicorn, BACKEND_WORKERS=2)")
        with Gunicorn(tmp / "", GUNICORN_BACKEND, "backend", BACKEND_WORKERS="2") as server:
            backend = drive(server, tmp, duration_s)
        log("ingest: bare Flask endpoint (same gunicorn settings)")
        with Gunicorn(tmp, GUNICORN_BARE, "bare", BACKEND_WORKERS="2") as server:
            bare = drive(server, tmp, duration_s)
        log("ingest: raw SQLite inserts")
        raw = raw_sqlite(tmp, min(duration_s, 5))
    rows = []
    for name, per_req, target_ratio in (("single", 1, 0.60), ("batch", BATCH, None)):
        b, c = backend[name], bare[name]
        label = "1 event/request" if per_req == 1 else f"batches of {BATCH}"
        failed = b["non2xx"] + b["errors"]
        events_s = b["rps"] * per_req
        rows.append(Row("ingest", f"{label}: events/s" + (f" ({failed} failed requests)" if failed else ""),
                        events_s, "ev/s", c["rps"] * per_req, "bare endpoint",
                        target=f">= {target_ratio:.0%} of bare" if target_ratio else ">= 20,000 ev/s",
                        met=(events_s >= target_ratio * c["rps"] * per_req) if target_ratio
                        else events_s >= 20_000))
        rows.append(Row("ingest", f"{label}: events/s vs raw SQLite", events_s, "ev/s", raw[name],
                        f"sqlite3, {per_req}/tx"))
        for p in ("p50", "p99"):
            rows.append(Row("ingest", f"{label}: {p} latency ({CONNECTIONS} connections)", b[f"{p}_ms"], "ms",
                            c[f"{p}_ms"], "bare endpoint"))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    print_table(run(parser.parse_args().quick))
