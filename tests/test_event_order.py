"""Rules apply per target in check-time order; a late event is stored but moves no alert."""

from tests.backend_fixtures import api, app, backend_env, client, console, db, event, settings, with_env  # noqa: F401


def at(second: int) -> str:
    return f"2025-01-08T15:30:{second:02d}Z"


@with_env(FAILURE_THRESHOLD="1")
def test_a_late_success_does_not_resolve_a_newer_outage(api, db):
    api.send(event(ok=False, timestamp=at(10)))
    answer = api.send(event(ok=True, timestamp=at(5)))  # checked before the failure, delivered after
    assert answer["alert"] is None
    assert db.rows("SELECT status FROM alerts")[0]["status"] == "OPEN"
    assert [r["is_late"] for r in db.rows("SELECT is_late FROM events ORDER BY id")] == [0, 1]


@with_env(FAILURE_THRESHOLD="1")
def test_a_late_failure_does_not_reopen_a_recovered_target(api, db):
    api.send(event(ok=False, timestamp=at(10)))
    api.send(event(ok=True, timestamp=at(20)))
    api.send(event(ok=False, timestamp=at(15)))  # a replay of an old failure
    assert [tuple(r) for r in db.rows("SELECT status, event_id FROM alerts")] == [("RESOLVED", 1)]
    assert db.count("events") == 3


def test_a_batch_is_judged_in_check_time_order_whatever_its_order(api, db):
    # Sent newest first: in check-time order these are fail, fail, fail -> one alert on the third.
    answer = api.post("/events", json=[event(ok=False, timestamp=at(s)) for s in (3, 2, 1)])
    assert answer.status_code == 201
    [alert] = db.rows("SELECT event_id FROM alerts")
    by_id = {e["event_id"]: e for e in answer.get_json()["events"]}
    timestamps = {r["id"]: r["timestamp"] for r in db.rows("SELECT id, timestamp FROM events")}
    assert timestamps[alert["event_id"]] == "2025-01-08 15:30:03"
    assert by_id[alert["event_id"]]["alert"]["status"] == "OPEN"
    assert sum(e["alert"] is not None for e in answer.get_json()["events"]) == 1


def test_late_events_do_not_count_toward_the_threshold(api, db):
    api.send(event(ok=True, timestamp=at(30)))
    for second in (1, 2, 3):  # three old failures replayed after a newer success
        api.send(event(ok=False, timestamp=at(second)))
    assert db.count("alerts") == 0
    api.send(event(ok=False, timestamp=at(31)))
    assert db.count("alerts") == 0  # one failure in a row, not four


def test_two_targets_keep_separate_clocks(api, db):
    api.send(event(target_url="https://a.example/", ok=True, timestamp=at(50)))
    api.send(event(target_url="https://b.example/", ok=True, timestamp=at(10)))
    assert [r["is_late"] for r in db.rows("SELECT is_late FROM events ORDER BY id")] == [0, 0]


def test_failures_arriving_out_of_order_still_open_exactly_one_alert(api, db):
    # Newest first, one at a time: in check-time order they are four failures in a row.
    for second in (10, 1, 2, 3):
        api.send(event(ok=False, timestamp=at(second)))
    [alert] = db.rows("SELECT event_id, status FROM alerts")
    assert alert["status"] == "OPEN"
    # After :10, :01 and :02 have arrived, three failures stand in a row: :02 crossed the threshold.
    assert db.rows("SELECT timestamp FROM events WHERE id = ?", (alert["event_id"],))[0][0] == "2025-01-08 15:30:02"


def test_a_check_a_few_milliseconds_older_is_late(api, db):
    """Stored check times keep milliseconds: two checks within one second still have an order."""
    api.send(event(ok=True, timestamp="2025-01-08T15:30:45.200Z"))
    api.send(event(ok=False, timestamp="2025-01-08T15:30:45.100Z"))
    api.send(event(ok=False, timestamp="2025-01-08T15:30:45.300Z"))
    assert [r["is_late"] for r in db.rows("SELECT is_late FROM events ORDER BY id")] == [0, 1, 0]
    assert db.rows("SELECT last_check_at FROM targets")[0]["last_check_at"] == "2025-01-08 15:30:45.300"
