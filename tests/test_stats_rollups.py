"""The roller: rollups equal the raw events, late events land in their hour, a chunk is one transaction
with the watermark, and two rollers never count an event twice (SPEC §8 stats)."""

import threading
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

from backend import store
from backend.database import events
from backend.retention import RetentionPurger
from backend.rollups import CHUNK, Roller
from backend.rules import is_agent_verdict, is_failure
from tests.backend_fixtures import api, app, backend_env, client, console, db, event, settings, with_env  # noqa: F401

BASE = datetime(2026, 10, 1, 10, 0, 0, tzinfo=timezone.utc)


def at(minutes: float) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def varied_events(count: int, start_minute: float = 0) -> list[dict]:
    """Checks of three URL targets and one file target over several hours: successes, 503s, timeouts."""
    items = []
    for i in range(count):
        url = f"https://t{i % 3}.example/"
        fields = {"timestamp": at(start_minute + i * 7), "response_time_ms": 20 + (i * 37) % 900}
        if i % 4 == 3:
            fields["target"] = "shop"  # a named target (no targets file here): its checks count under the name
        if i % 11 == 0:
            items.append(event(url, ok=False, status_code=None, error_message="Request timed out after 5000ms",
                               **{**fields, "response_time_ms": None}))
        elif i % 5 == 0:
            items.append(event(url, ok=True, status=503, **fields))  # a status failure by §5's rule
        else:
            items.append(event(url, ok=True, **fields))
    return items


def raw_counts(db) -> dict:
    """What the rollups must hold, counted from the raw events in Python."""
    counts = defaultdict(lambda: [0, 0, 0, 0])
    for row in db.rows("SELECT target, target_url, timestamp, is_success, status_code, response_time_ms, failed "
                       "FROM events"):
        key = (row["target"] or row["target_url"], row["timestamp"][:13] + ":00:00")
        c = counts[key]
        c[0] += 1
        # No targets file here: §5's rule, but for tcp checks (SPEC §9); ingest stored the same verdict.
        failed = is_failure(bool(row["is_success"]), row["status_code"], is_agent_verdict(False, row["target_url"]))
        assert row["failed"] == failed
        c[1] += failed
        if row["response_time_ms"] is not None:
            c[2] += row["response_time_ms"]
            c[3] += 1
    return {k: tuple(v) for k, v in counts.items()}


def rollup_counts(db) -> dict:
    rows = db.rows("SELECT target, hour, checks, failures, response_ms_sum, response_ms_count, histogram FROM rollups")
    for row in rows:  # the histogram counts every response time once
        assert sum(int(pair.split(":")[1]) for pair in row["histogram"].split()) == row["response_ms_count"]
    return {(r["target"], r["hour"]): (r["checks"], r["failures"], r["response_ms_sum"], r["response_ms_count"])
            for r in rows}


def watermark(db) -> int:
    return db.rows("SELECT last_event_id FROM rollup_progress")[0][0]


def test_rollups_equal_the_raw_events_per_target_and_hour(app, api, db):
    api.send(*varied_events(200))
    assert app.extensions["outage"].roller.run_once() == 200
    assert rollup_counts(db) == raw_counts(db)
    assert {k[0] for k in rollup_counts(db)} == {"https://t0.example/", "https://t1.example/",
                                                  "https://t2.example/", "shop"}
    assert watermark(db) == db.rows("SELECT MAX(id) FROM events")[0][0]
    assert app.extensions["outage"].roller.run_once() == 0  # nothing new: nothing counted again


def test_a_backlog_longer_than_a_chunk_is_rolled_in_several_transactions(app, api, db):
    for start in range(0, CHUNK + 500, 1000):
        api.send(*varied_events(min(1000, CHUNK + 500 - start), start_minute=start * 7))
    assert app.extensions["outage"].roller.run_once() == CHUNK + 500
    assert rollup_counts(db) == raw_counts(db)


def test_a_late_event_lands_in_its_own_hour_after_that_hour_was_rolled(app, api, db):
    roller = app.extensions["outage"].roller
    api.send(event(timestamp=at(0)), event(timestamp=at(65)))
    roller.run_once()
    api.send(event(ok=False, timestamp=at(5)))  # checked at 10:05, arriving after 11:05 was stored
    assert roller.run_once() == 1
    rollups = rollup_counts(db)
    assert rollups[("https://t.example/", "2026-10-01 10:00:00")][:2] == (2, 1)
    assert rollups[("https://t.example/", "2026-10-01 11:00:00")][:2] == (1, 0)
    assert rollups == raw_counts(db)


def test_a_chunk_that_fails_midway_leaves_neither_counts_nor_watermark(app, api, db, monkeypatch):
    """The counts and the watermark's advance are one transaction: a crash between them counts nothing."""
    roller = app.extensions["outage"].roller
    api.send(*varied_events(30))
    roller.run_once()
    api.send(*varied_events(30, start_minute=10))
    before_rollups, before_watermark = rollup_counts(db), watermark(db)

    def save_then_crash(conn, new_rows, changed_rows):
        save_rollups(conn, new_rows, changed_rows)  # written, and the watermark moved, then...
        raise RuntimeError("killed")

    save_rollups = store.save_rollups
    monkeypatch.setattr(store, "save_rollups", save_then_crash)
    with pytest.raises(RuntimeError):
        roller.run_once()
    assert (rollup_counts(db), watermark(db)) == (before_rollups, before_watermark)
    monkeypatch.setattr(store, "save_rollups", save_rollups)
    assert roller.run_once() == 30
    assert rollup_counts(db) == raw_counts(db)


def test_two_rollers_racing_over_one_database_count_each_event_once(app, api, db, settings):
    """Two rollers (as two processes whose leases overlapped) run chunk after chunk at the same time."""
    api.send(*varied_events(1000))
    api.send(*varied_events(1000, start_minute=7000))
    engine = app.extensions["outage"].engine
    rollers = [Roller(engine, 60, start=False) for _ in range(2)]
    rolled = Counter()
    errors = []

    def work(roller):
        try:
            for _ in range(40):
                rolled[id(roller)] += roller.roll_chunk()
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in rollers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert sum(rolled.values()) == 2000
    assert rollup_counts(db) == raw_counts(db)


def test_on_postgresql_an_event_committed_after_a_higher_id_is_counted_never_skipped(app, db):
    engine = app.extensions["outage"].engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite writers take turns: they commit in id order")
    roller = Roller(engine, 60, start=False)
    row = {"target_url": "https://t0.example/", "timestamp": "2026-10-01 10:00:00", "is_success": 1,
           "status_code": 200, "failed": 0,  # as ingest stores a success: the verdict is a column
           "received_at": "2026-10-01 10:00:00",  # long ago: its transaction waited (locks), still open
           "checked_at": "2026-10-01 10:00:00.000"}
    with engine.connect() as slow:
        slow.begin()
        slow.execute(insert(events).values(row))  # takes the lower id, commits last
        with engine.begin() as fast:
            fast.execute(insert(events).values({**row, "timestamp": "2026-10-01 11:00:00"}))
        assert roller.run_once() == 0  # an id below the newest may still commit: nothing rolled yet
        slow.commit()
    assert roller.run_once() == 2
    assert rollup_counts(db) == raw_counts(db) and watermark(db) == max(r[0] for r in db.rows("SELECT id FROM events"))


def test_rollups_outlive_the_events_for_35_days_or_retention_days(app, api, db):
    roller = app.extensions["outage"].roller
    api.send(event(timestamp=at(0)))
    roller.run_once()
    week, two_months = (RetentionPurger(app.extensions["outage"].engine, days, 3600) for days in (7, 60))
    try:
        week.purge_once(now=BASE + timedelta(days=8))
        assert db.count("events") == 0 and db.count("rollups") == 1  # the 30-day window still has it
        week.purge_once(now=BASE + timedelta(days=36))
        assert db.count("rollups") == 0
        api.send(event(timestamp=at(0)))
        roller.run_once()
        two_months.purge_once(now=BASE + timedelta(days=40))
        assert db.count("rollups") == 1  # RETENTION_DAYS over 35 keeps them as long as the events
    finally:
        week.close()
        two_months.close()
