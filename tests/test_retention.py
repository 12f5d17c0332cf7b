"""Events older than RETENTION_DAYS are purged on a schedule; alerts and the events they use stay."""

from datetime import datetime, timedelta, timezone

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
