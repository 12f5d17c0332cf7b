"""Ingest: POST /events under both servers we ship, one event per request and batches of 500, against its ceilings.

The servers: gunicorn as `make run` starts it (backend/gunicorn_conf.py) and waitress as
`python backend/app.py` starts it (threads=8). The bodies are bench/event_mix.py's: each connection
is one agent with its own targets (50 when it sends one event per request, 500 when it sends a
batch of 500, one round of them), some flapping, so failures, dedup, alert openings and recoveries
are all in the mix (FAILURE_THRESHOLD=3); how many alerts opened and resolved during each run is
counted from the database and reported. Ceilings, measured in the same run: each server, with the
same settings, serving a bare Flask endpoint that parses the same JSON and returns 201
(bench/bare_app.py under bench/bare_gunicorn_conf.py, or bench/bare_waitress.py), and raw SQLite
inserts of the same rows into the same schema, in one process. When PostgreSQL is installed
(/usr/lib/postgresql/*/bin), the gunicorn backend runs once more on a throwaway cluster
(scripts/pg_cluster.sh), against the same bare gunicorn endpoint; otherwise that pass is skipped
with a line. Load comes from wrk (or bench/loadgen.py) in its own process.

    python -m bench.ingest [--quick]
"""

from __future__ import annotations

import argparse
import glob
import os
import sqlite3
import subprocess
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text

from bench import event_mix
from bench.common import (API_KEY, GUNICORN_BACKEND, GUNICORN_BARE, ROOT, WAITRESS_BACKEND, WAITRESS_BARE, Gunicorn,
                          PythonServer, Row, Waitress, free_port, insert_rows, log, next_run, print_table, run_load)

# events per request, targets per agent, connections (= agents). A batch is one round over an
# agent's targets, the largest the agent's sender makes; one event per request gets fewer targets
# so that its flapping ones reach the threshold within the run too.
CASES = {"single": (1, 50, 8), "batch": (500, 500, 4)}
THRESHOLD = 3
# The servers we ship: the backend's command line and its bare counterpart's, with the same settings.
SERVERS = {"gunicorn": (Gunicorn, GUNICORN_BACKEND, GUNICORN_BARE),
           "waitress": (Waitress, WAITRESS_BACKEND, WAITRESS_BARE)}
BACKEND_ENV = {"BACKEND_WORKERS": "2", "FAILURE_THRESHOLD": str(THRESHOLD)}  # BACKEND_WORKERS: gunicorn's
PG_INITDB = "/usr/lib/postgresql/*/bin/initdb"  # where scripts/pg_cluster.sh looks for PostgreSQL
PG_SCRIPT = str(ROOT / "scripts" / "pg_cluster.sh")


def _tally(database_url: str) -> dict[str, int]:
    """Alerts opened and resolved, and failed checks stored, so far (SQLite or PostgreSQL)."""
    from backend.database import make_engine

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return dict(zip(("opened", "resolved", "events", "failed"), conn.execute(text(
                "SELECT (SELECT count(*) FROM alerts), (SELECT count(*) FROM alerts WHERE status = 'RESOLVED'), "
                "(SELECT count(*) FROM events), (SELECT count(*) FROM events WHERE is_success = 0)")).one()))
    finally:
        engine.dispose()


def drive(server: PythonServer, tmp: Path, duration_s: float, db: str | None = None) -> dict[str, dict]:
    """One-per-request and batch load against one server; a short warm-up first.

    With `db` (the backend's database URL), each result also says what the run stored: alerts
    opened and resolved, events and failed checks.
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
        log(f"  {server.server} {server.name} {name}:"
            f" {r['rps']:.0f} req/s p50 {r['p50_ms']:.1f} ms p99 {r['p99_ms']:.1f} ms "
            f"non-2xx {r['non2xx']} errors {r['errors']} ({r['tool']})"
            + (f"; stored {r['events']} events ({r['failed']} failed), {r['opened']} alerts opened, "
               f"{r['resolved']} resolved" if db else ""))
    return results


def raw_sqlite(tmp: Path, duration_s: float) -> dict[str, float]:
    """Rows per second inserting the same rows with sqlite3: one per transaction, then 500 per transaction."""
    from backend.database import configure_sqlite_connection, make_engine
    from backend.migrate import upgrade
    from backend.time_text import check_time_text, utc_text

    path = tmp / "raw.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)  # the backend's own schema and indexes
    engine.dispose()
    conn = sqlite3.connect(path)
    configure_sqlite_connection(conn)  # the backend's own pragmas, checkpoints included
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


@contextmanager
def postgres_cluster():
    """The URL of a throwaway PostgreSQL cluster (scripts/pg_cluster.sh), stopped on exit; None, with
    one line, when PostgreSQL is not installed (the script would install it) or the cluster will not start."""
    if not glob.glob(PG_INITDB):
        log(f"ingest: PostgreSQL pass skipped: PostgreSQL is not installed (no {PG_INITDB})")
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as name:
        os.chmod(name, 0o755)  # as `make test-postgres`: the cluster runs as the postgres user
        try:
            try:
                url = subprocess.run([PG_SCRIPT, "start", name, str(free_port())], capture_output=True, text=True,
                                     check=True, timeout=180).stdout.strip()
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                log(f"ingest: PostgreSQL pass skipped: scripts/pg_cluster.sh could not start a cluster ({exc})")
                url = None
            yield url
        finally:
            subprocess.run([PG_SCRIPT, "stop", name], capture_output=True, timeout=90)


def measure(kind: type[PythonServer], args: list[str], tmp: Path, duration_s: float, bare: bool = False,
            **env: str) -> dict[str, dict]:
    """drive() one server in a directory of its own: the backend (counting what it stored) or a bare endpoint."""
    tmp.mkdir()
    with kind(tmp, args, "bare" if bare else "backend", **BACKEND_ENV, **env) as server:
        return drive(server, tmp, duration_s, None if bare else server.env["DATABASE_URL"])


def case_rows(prefix: str, backend: dict, bare: dict, raw: dict | None, targets: bool) -> list[Row]:
    """The summary rows of one backend run beside its bare endpoint (and raw SQLite); `targets`: issue 9's goals."""
    rows = []
    for name, (per_req, n_targets, connections) in CASES.items():
        b, c = backend[name], bare[name]
        shape = "1 event/request" if per_req == 1 else f"batches of {per_req}"
        label = f"{prefix}: {shape} ({connections} x {n_targets} targets)"
        failed = b["non2xx"] + b["errors"]
        events_s, bare_s = b["rps"] * per_req, c["rps"] * per_req
        goal = (">= 60% of bare", events_s >= 0.6 * bare_s) if per_req == 1 else (">= 20,000 ev/s", events_s >= 20_000)
        rows.append(Row("ingest", f"{label}: events/s" + (f" ({failed} failed requests)" if failed else ""),
                        events_s, "ev/s", bare_s, "bare endpoint", *(goal if targets else ())))
        if raw:
            rows.append(Row("ingest", f"{label}: events/s vs raw SQLite", events_s, "ev/s", raw[name],
                            f"sqlite3, {per_req}/tx"))
        rows.append(Row("ingest", f"{label}: p50 latency", b["p50_ms"], "ms", c["p50_ms"], "bare endpoint"))
        p99_goal = ("<= 3x bare", b["p99_ms"] <= 3 * c["p99_ms"]) if targets and per_req == 1 else ()
        rows.append(Row("ingest", f"{label}: p99 latency", b["p99_ms"], "ms", c["p99_ms"], "bare endpoint", *p99_goal))
        rows.append(Row("ingest", f"{label}: failed checks among those stored",
                        100 * b["failed"] / max(1, b["events"]), "%"))
        rows.append(Row("ingest", f"{label}: alerts opened during the run", b["opened"], "alerts"))
        rows.append(Row("ingest", f"{label}: alerts resolved during the run", b["resolved"], "alerts"))
    return rows


def run(quick: bool = False) -> list[Row]:
    """Measure ingest under both servers (and on PostgreSQL when installed) and its ceilings; return the rows."""
    duration_s = 1 if quick else 10
    measured = {}  # label -> (backend, bare)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as name:
        tmp = Path(name)
        for server, (kind, backend_args, bare_args) in SERVERS.items():
            log(f"ingest: backend ({server}, BACKEND_WORKERS=2 for gunicorn, FAILURE_THRESHOLD={THRESHOLD})")
            backend = measure(kind, backend_args, tmp / f"{server}-backend", duration_s)
            log(f"ingest: bare Flask endpoint (same {server} settings)")
            measured[server] = backend, measure(kind, bare_args, tmp / f"{server}-bare", duration_s, bare=True)
        with postgres_cluster() as url:
            if url:
                log("ingest: backend (gunicorn + PostgreSQL, same settings)")
                backend = measure(Gunicorn, GUNICORN_BACKEND, tmp / "postgres-backend", duration_s, DATABASE_URL=url)
                measured["gunicorn + PostgreSQL"] = backend, measured["gunicorn"][1]  # the bare endpoint of this run
        log("ingest: raw SQLite inserts")
        raw = raw_sqlite(tmp, min(duration_s, 5))
    rows = []
    for label, (backend, bare) in measured.items():
        on_sqlite = label in SERVERS
        rows += case_rows(label, backend, bare, raw if on_sqlite else None, targets=on_sqlite)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    print_table(run(parser.parse_args().quick))
