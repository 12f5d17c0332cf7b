"""Queries at size: GET /alerts (unfiltered and filtered) with 100,000 alerts, the rule path of
POST /events with 1,000,000 events beside them, and GET /targets/<name>/stats?window=30d over 30 days
of rollups of 1,000 targets, under gunicorn; p50/p99 of sequential requests.

GET /alerts reads only the alerts table, so its rows are labelled by the alerts stored; POST /events
writes into the events table and its indexes, so its rows are labelled by both. The database is
created by backend.migrate.upgrade (the backend's own schema and indexes), then seeded with raw
SQL in one transaction: 1000 targets with 1000 checks each over the last 10 days and 100 outages
each, every outage three failed checks (the third opens the alert) and one success that resolves it;
the newest outage is still going on 5% of the targets (OPEN) and acknowledged on 2% (ACK); one
notification log row per notice sent; and each target's rule state. Rollups: one row per target and
hour for the last 30 days (720,000 rows: 60 checks an hour, a failure now and then, a histogram of
about 20 buckets as measured by bench/disk_use.py), the watermark left 2,000 events short of the
newest, so each stats request also counts a tail of unrolled events, as the route does between rolls.

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
from urllib.parse import quote
from datetime import datetime, timedelta, timezone
from pathlib import Path

from backend.histogram import bucket_of, encode
from backend.time_text import check_time_text, utc_text
from bench.common import API_KEY, GUNICORN_BACKEND, Gunicorn, Row, insert_rows, log, percentile, print_table

TARGETS = 1000
THRESHOLD = 3
UNROLLED = 2000  # events above the rollups' watermark


def url_of(t: int) -> str:
    return f"https://service-{t}.example.com/health"


def last_status(t: int) -> str:
    """The status of target t's newest alert: OPEN on 5% of the targets, ACK on 2%, else RESOLVED."""
    return "OPEN" if t % 20 == 0 else "ACK" if t % 50 == 1 else "RESOLVED"


def outage_starts(t: int, per_target: int, alerts_per_target: int) -> list[int]:
    """The check numbers at which target t's outages start: one in each stretch of its history."""
    spacing = per_target // alerts_per_target
    if spacing < THRESHOLD + 2:
        raise ValueError("bench.queries needs at least 5 checks per alert")
    return [a * spacing + t % (spacing - THRESHOLD - 1) for a in range(alerts_per_target)]


def rollup_rows(days: int):
    """One rollup row per target and hour for the last `days` days, shaped like real ones."""
    from collections import Counter

    first = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    histograms = [encode(Counter(bucket_of(40 + (i * 7 + j * 13) % 90) for j in range(60))) for i in range(50)]
    for t in range(TARGETS):
        for h in range(days * 24):
            failures = 1 if (t + h) % 37 == 0 else 0
            yield {"target": url_of(t), "hour": utc_text(first + timedelta(hours=h)), "checks": 60,
                   "failures": failures, "response_ms_sum": 60 * 84, "response_ms_count": 60 - failures,
                   "histogram": histograms[(t + h) % len(histograms)]}


def seed(db: Path, events_total: int, alerts_total: int, rollup_days: int = 30) -> dict:
    """Create the schema with the migrations and fill it with raw executemany in one transaction."""
    from backend.database import make_engine
    from backend.migrate import upgrade

    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()
    per_target = events_total // TARGETS
    alerts_per_target = alerts_total // TARGETS
    starts = {t: outage_starts(t, per_target, alerts_per_target) for t in range(TARGETS)}
    now = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)
    step = timedelta(days=10) / per_target
    started = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    # Bulk-load settings for the seeding only; the backend sets its own (WAL) when it connects.
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("BEGIN")

    def moment(k: int) -> datetime:
        return now - (per_target - k) * step

    def failed(t: int, k: int) -> bool:
        """Check k of target t fails: inside an outage (the last one lasts to the end on active targets)."""
        last = starts[t][-1]
        if k >= last and last_status(t) != "RESOLVED":
            return True
        return any(0 <= k - s < THRESHOLD for s in starts[t])

    # Events in check-time order, round-robin over targets, as an agent would store them.
    def event_rows():
        for k in range(per_target):
            stamp, precise = utc_text(moment(k)), check_time_text(moment(k))
            for t in range(TARGETS):
                down = failed(t, k)
                yield {"target_url": url_of(t), "status_code": None if down else 200,
                       "response_time_ms": None if down else 40 + (k + t) % 60, "timestamp": stamp,
                       "is_success": 0 if down else 1,
                       "error_message": "Request timed out after 5000ms" if down else None,
                       "received_at": stamp, "event_uid": str(uuid.uuid4()), "is_late": 0, "checked_at": precise}
    insert_rows(conn, "events", event_rows())

    def event_id(k: int, t: int) -> int:  # id of target t's k-th check (ids start at 1)
        return k * TARGETS + t + 1

    # Alerts in the order they opened: at the third failed check, resolved at the next check.
    alert_rows = []
    for t in range(TARGETS):
        for a, first in enumerate(starts[t]):
            k = first + THRESHOLD - 1
            status = last_status(t) if a == alerts_per_target - 1 else "RESOLVED"
            at, resolved = utc_text(moment(k)), status == "RESOLVED"
            alert_rows.append({"event_id": event_id(k, t), "target_url": url_of(t), "target": url_of(t),
                               "alert_type": "ERROR",
                               "status": status, "created_at": at,
                               "acknowledged_at": utc_text(moment(k) + step / 2) if status == "ACK" else None,
                               "resolved_at": utc_text(moment(k + 1)) if resolved else None,
                               "resolved_event_id": event_id(k + 1, t) if resolved else None,
                               "message": "Request timed out after 5000ms"})
    alert_rows.sort(key=lambda row: row["event_id"])
    insert_rows(conn, "alerts", alert_rows)
    insert_rows(conn, "notification_logs", (
        {"alert_id": i, "channel": "CONSOLE", "notice_type": kind, "status": "SENT",
         "attempted_at": row["created_at"] if kind == "ERROR" else row["resolved_at"], "retry_count": 0}
        for i, row in enumerate(alert_rows, 1)
        for kind in (("ERROR", "RECOVERY") if row["status"] == "RESOLVED" else ("ERROR",))))
    last_check = check_time_text(moment(per_target - 1))
    insert_rows(conn, "targets", (
        {"name": url_of(t), "last_check_at": last_check,
         "failures_in_a_row": 0 if last_status(t) == "RESOLVED" else per_target - starts[t][-1]}
        for t in range(TARGETS)))
    insert_rows(conn, "rollups", rollup_rows(rollup_days))
    conn.execute("UPDATE rollup_progress SET last_event_id = ? WHERE id = 1", (max(0, events_total - UNROLLED),))
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    counts = dict(conn.execute("SELECT status, count(*) FROM alerts GROUP BY status").fetchall())
    counts.update({name: conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
                   for name in ("events", "alerts", "rollups")})
    conn.close()
    log(f"  seeded {counts['events']:,} events and {counts['alerts']:,} alerts ({counts.get('OPEN', 0)} OPEN, "
        f"{counts.get('ACK', 0)} ACK) and {counts['rollups']:,} rollup rows in {time.perf_counter() - started:.0f}s")
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
    events_total, alerts_total, n = (20_000, 2_000, 30) if quick else (1_000_000, 100_000, 300)
    rollup_days = 3 if quick else 30
    at_alerts = f"{alerts_total:,} alerts"
    at_events = f"{events_total:,} events, {at_alerts}"
    active = [t for t in range(TARGETS) if last_status(t) != "RESOLVED"]
    calm = [t for t in range(TARGETS) if last_status(t) == "RESOLVED"]
    with tempfile.TemporaryDirectory(prefix="bench-queries-") as name:
        tmp = Path(name)
        log(f"queries: seeding {events_total:,} events and {at_alerts}")
        seed(tmp / "notifications.db", events_total, alerts_total, rollup_days)
        at_rollups = f"{TARGETS * rollup_days * 24:,} rollup rows + {UNROLLED:,} unrolled events"
        stats_path = f"/targets/{quote(url_of(TARGETS // 2 + 1), safe='')}/stats?window=30d"
        cases = [
            ("GET /alerts", "GET", "/alerts", None),
            ("GET /alerts?status=OPEN", "GET", "/alerts?status=OPEN", None),
            ("GET /alerts?status=RESOLVED", "GET", "/alerts?status=RESOLVED", None),
            ("GET /alerts?target_url=…", "GET", f"/alerts?target_url={url_of(TARGETS // 2 + 1)}", None),
            ("GET /alerts?status=RESOLVED&target_url=…", "GET",
             f"/alerts?status=RESOLVED&target_url={url_of(7)}", None),
            ("GET /alerts?limit=500", "GET", "/alerts?limit=500", None),
            (f"GET /alerts?limit=50&offset={alerts_total // 2:,}", "GET",
             f"/alerts?limit=50&offset={alerts_total // 2}", None),
            ("POST /events failure, active alert (dedup)", "POST", "/events", event_bodies(active, False)),
            ("POST /events success, no alert", "POST", "/events", event_bodies(calm, True)),
            ("GET /targets/<name>/stats?window=30d", "GET", stats_path, None),
        ]
        rows = []
        # No roll during the run: every stats request counts the same unrolled tail.
        with Gunicorn(tmp, GUNICORN_BACKEND, "backend", BACKEND_WORKERS="2", RETENTION_DAYS="0",
                      FAILURE_THRESHOLD=str(THRESHOLD), ROLLUP_INTERVAL_SECONDS="86400") as backend:
            for label, method, path, bodies in cases:
                ms = timed(backend.port, method, path, bodies, n)
                p50, p99 = percentile(ms, 50), percentile(ms, 99)
                log(f"  {label}: p50 {p50:.1f} ms p99 {p99:.1f} ms ({n} requests)")
                is_stats = path == stats_path
                is_get_alerts = method == "GET" and not is_stats
                size = at_rollups if is_stats else at_alerts if is_get_alerts else at_events
                ceiling = 50 if is_stats else 20 if is_get_alerts else None  # SPEC §8; the alerts issue
                rows.append(Row("queries", f"{label} p50 @ {size}", p50, "ms"))
                rows.append(Row("queries", f"{label} p99 @ {size}", p99, "ms",
                                target=f"< {ceiling} ms" if ceiling else "",
                                met=(p99 < ceiling) if ceiling else None))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    print_table(run(parser.parse_args().quick))
