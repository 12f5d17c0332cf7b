"""Events and finished deliveries older than RETENTION_DAYS are purged on a schedule, by one process at a time;
alerts and the events they use stay."""

import io
from datetime import datetime, timedelta, timezone

from backend import store
from backend.factory import create_app
from backend.notifiers import ConsoleNotifier
from tests.backend_fixtures import api, app, backend_env, client, console, db, event, settings, with_env  # noqa: F401
from tests.support.procs import wait_until


def days_ago(days: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat()


@with_env(FAILURE_THRESHOLD="1", RETENTION_DAYS="30")
def test_old_events_go_and_alerts_keep_theirs(app, api, db):
    api.send(event(ok=True, timestamp=days_ago(40)))     # old, unused: purged
    api.send(event(ok=False, timestamp=days_ago(39)))    # opened the alert: kept
    api.send(event(ok=False, timestamp=days_ago(38)))    # old dedup failure: purged
    api.send(event(ok=True, timestamp=days_ago(37)))     # resolved the alert: kept
    api.send(event(ok=True, timestamp=days_ago(1)))      # recent: kept
    assert app.extensions["outage"].purger.purge_once() == 2
    assert [r["id"] for r in db.rows("SELECT id FROM events ORDER BY id")] == [2, 4, 5]
    assert [tuple(r) for r in db.rows("SELECT event_id, resolved_event_id, status FROM alerts")] == [(2, 4, "RESOLVED")]


@with_env(RETENTION_DAYS="0")
def test_retention_zero_keeps_everything(app, api, db):
    api.send(event(timestamp=days_ago(4000)))
    assert not app.extensions["outage"].purger._thread.is_alive()
    assert db.count("events") == 1


@with_env(RETENTION_DAYS="7", RETENTION_INTERVAL_SECONDS="0.2")
def test_the_purge_runs_by_itself_on_its_interval(api, db):
    api.send(event(timestamp=days_ago(8)))
    api.send(event(timestamp=days_ago(6)))
    wait_until(lambda: db.count("events") == 1, 10, message="the scheduled purge")


@with_env(RETENTION_DAYS="7", RETENTION_INTERVAL_SECONDS="0.1")
def test_one_process_purges_and_another_takes_over_when_it_stops(app, settings, monkeypatch):
    purged_by: list = []
    original = store.purge_events

    def purge_events(conn, older_than, limit):
        purged_by.append(conn.engine)
        return original(conn, older_than, limit)

    monkeypatch.setattr(store, "purge_events", purge_events)
    other = create_app(settings, notifiers=[ConsoleNotifier(settings.log_file, stream=io.StringIO())])
    try:
        first = app.extensions["outage"].engine
        second = other.extensions["outage"].engine
        wait_until(lambda: len(purged_by) >= 6, 10, message="six scheduled purges")
        assert len(set(purged_by)) == 1, "both processes purged"
        holder = first if purged_by[0] is first else second
        (app if holder is first else other).extensions["outage"].close()  # gives the lease up
        wait_until(lambda: purged_by[-1] is not holder, 10, message="the other process taking over")
    finally:
        other.extensions["outage"].close()


@with_env(FAILURE_THRESHOLD="1", RETENTION_DAYS="30")
def test_finished_deliveries_go_after_retention_days_and_pending_ones_stay(app, api, db):
    api.send(event(ok=False, timestamp=days_ago(1)))
    api.send(event(ok=True, timestamp=days_ago(1)))
    outage = app.extensions["outage"]
    assert outage.dispatcher.wait_idle(10)
    with outage.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE deliveries SET finished_at = '2000-01-01 00:00:00' WHERE id = 1")
        conn.exec_driver_sql("UPDATE deliveries SET status = 'PENDING', finished_at = NULL, "
                             "next_attempt_at = '9999-01-01 00:00:00.000000' WHERE id = 2")
    outage.purger.purge_once()
    assert [tuple(r) for r in db.rows("SELECT id, status FROM deliveries ORDER BY id")] == [(2, "PENDING")]
    assert db.count("notification_logs") == 2  # the attempts stay, with their alert
