"""Queries at size: GET /alerts (unfiltered and filtered) and the rule path of POST /events, with
1,000,000 stored events and 10,000 alerts, under gunicorn; p50/p99 of sequential requests.

The database is created by backend.database.init_db (the backend's own schema and indexes), then
seeded with raw SQL in one transaction: 1000 targets with 1000 checks each over the last 10 days,
10 alerts per target (the newest OPEN on half the targets, ACK on a quarter), two notification log
rows per alert, and each target's rule state.

    python -m bench.queries [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import sqlite3
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from backend.store import check_time_text, utc_text
from bench.common import API_KEY, GUNICORN_BACKEND, Gunicorn, Row, insert_rows, log, percentile, print_table

TARGETS = 1000


def url_of(t: int) -> str:
    return f"https://service-{t}.example.com/health"


def seed(db: Path, events_total: int, alerts_total: int) -> dict:
    """Create the schema with init_db and fill it with raw executemany in one transaction."""
    from backend.database import init_db, make_engine

    engine = make_engine(f"sqlite:///{db}")
    init_db(engine)
    engine.dispose()
    per_target = events_total // TARGETS
    alerts_per_target = alerts_total // TARGETS
    now = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    step = timedelta(days=10) / per_target
    started = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    # Bulk-load settings for the seeding only; the backend sets its own (WAL) when it connects.
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("BEGIN")

    # Events in check-time order, round-robin over targets, as an agent would store them.
    def event_rows():
        for k in range(per_target):
            moment = now - (per_target - k) * step
            stamp, precise = utc_text(moment), check_time_text(moment)
            for t in range(TARGETS):
                failed = (k * 7 + t) % 97 == 0
                yield {"target_url": url_of(t), "status_code": None if failed else 200,
                       "response_time_ms": None if failed else 40 + (k + t) % 60, "timestamp": stamp,
                       "is_success": 0 if failed else 1,
                       "error_message": "Request timed out after 5000ms" if failed else None,
                       "received_at": stamp, "event_uid": str(uuid.uuid4()), "is_late": 0, "checked_at": precise}
    insert_rows(conn, "events", event_rows())

    def event_id(k: int, t: int) -> int:  # id of target t's k-th check (ids start at 1)
        return k * TARGETS + t + 1

    # Alerts: spread over history, created in time order; the last one per target may be active.
    alert_rows, state_rows = [], []
    for a in range(alerts_per_target):
        for t in range(TARGETS):
            k = (a + 1) * per_target // (alerts_per_target + 1)
            last = a == alerts_per_target - 1
            status = ("OPEN" if t % 2 == 0 else "ACK" if t % 4 == 1 else "RESOLVED") if last else "RESOLVED"
            at = utc_text(now - (per_target - k) * step)
            resolved = status == "RESOLVED"
            alert_rows.append({"event_id": event_id(k, t), "target_url": url_of(t), "alert_type": "ERROR",
                               "status": status, "created_at": at, "acknowledged_at": at if status == "ACK" else None,
                               "resolved_at": at if resolved else None,
                               "resolved_event_id": event_id(k + 1, t) if resolved else None,
                               "message": "Request timed out after 5000ms"})
    insert_rows(conn, "alerts", alert_rows)
    insert_rows(conn, "notification_logs", (
        {"alert_id": i, "channel": "CONSOLE", "notice_type": kind, "status": "SENT", "attempted_at": row["created_at"],
         "retry_count": 0} for i, row in enumerate(alert_rows, 1) for kind in ("ERROR", "RECOVERY")))
    last_check = check_time_text(now - step)
    for t in range(TARGETS):
        active = t % 4 != 3
        state_rows.append({"target_url": url_of(t), "failures_in_a_row": 5 if active else 0,
                           "last_check_at": last_check})
    insert_rows(conn, "targets", state_rows)
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    counts = {name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name in ("events", "alerts")}
    conn.close()
    log(f"  seeded {counts['events']:,} events and {counts['alerts']:,} alerts in {time.perf_counter() - started:.0f}s")
    return counts


def timed(port: int, method: str, path: str, bodies, n: int, warmup: int = 20) -> list[float]:
    """Latencies in ms of `n` sequential requests on one keep-alive connection (after a warm-up)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    result = []
    try:
        for i in range(warmup + n):
            body = next(bodies) if bodies else None
            started = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            elapsed = (time.perf_counter() - started) * 1000
            if response.status >= 300:
                raise RuntimeError(f"{method} {path} answered {response.status}")
            if i >= warmup:
                result.append(elapsed)
    finally:
        conn.close()
    return result


def event_bodies(targets: list[int], is_success: bool):
    """Fresh check results for `targets`, round-robin, each newer than anything stored."""
    i = 0
    while True:
        moment = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        yield json.dumps({"target_url": url_of(targets[i % len(targets)]), "timestamp": moment,
                          "is_success": is_success, "status_code": 200 if is_success else 503,
                          "response_time_ms": 50, "error_message": None if is_success else "HTTP 503",
                          "event_uid": str(uuid.uuid4())})
        i += 1


def run(quick: bool = False) -> list[Row]:
    """Seed, start the backend on the seeded database, time each query; return the summary rows."""
    events_total, alerts_total, n = (20_000, 2_000, 30) if quick else (1_000_000, 10_000, 300)
    size = f"{events_total:,} events"
    with tempfile.TemporaryDirectory(prefix="bench-queries-") as name:
        tmp = Path(name)
        log(f"queries: seeding {size} and {alerts_total:,} alerts")
        seed(tmp / "notifications.db", events_total, alerts_total)
        cases = [
            ("GET /alerts", "GET", "/alerts", None),
            ("GET /alerts?status=OPEN", "GET", "/alerts?status=OPEN", None),
            ("GET /alerts?status=RESOLVED", "GET", "/alerts?status=RESOLVED", None),
            ("GET /alerts?target_url=…", "GET", f"/alerts?target_url={url_of(TARGETS // 2 + 1)}", None),
            ("GET /alerts?status=RESOLVED&target_url=…", "GET",
             f"/alerts?status=RESOLVED&target_url={url_of(7)}", None),
            ("GET /alerts?limit=500", "GET", "/alerts?limit=500", None),
            ("POST /events failure, active alert (dedup)", "POST", "/events",
             event_bodies([t for t in range(TARGETS) if t % 4 != 3], False)),
            ("POST /events success, no alert", "POST", "/events",
             event_bodies([t for t in range(TARGETS) if t % 4 == 3], True)),
        ]
        rows = []
        with Gunicorn(tmp, GUNICORN_BACKEND, "backend", BACKEND_WORKERS="2", RETENTION_DAYS="0") as backend:
            for label, method, path, bodies in cases:
                ms = timed(backend.port, method, path, bodies, n)
                p50, p99 = percentile(ms, 50), percentile(ms, 99)
                log(f"  {label}: p50 {p50:.1f} ms p99 {p99:.1f} ms ({n} requests)")
                is_get_alerts = method == "GET"
                rows.append(Row("queries", f"{label} p50 @ {size}", p50, "ms"))
                rows.append(Row("queries", f"{label} p99 @ {size}", p99, "ms",
                                target="< 20 ms" if is_get_alerts else "",
                                met=(p99 < 20) if is_get_alerts else None))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    print_table(run(parser.parse_args().quick))
