"""POST /events through the app (SPEC §4, §5): storing, validating, and the alert rules end to end."""

from __future__ import annotations

import json

import pytest

from backend.factory import MAX_BODY_BYTES
from tests.backend_fixtures import (URL, api, app, backend_env, client, console, db, event,  # noqa: F401
                                    settings, with_env)

OTHER = "http://other.example:8080/health"


# --- storing ---------------------------------------------------------------------------------

def test_one_event_is_stored_and_answered_201(api, db):
    answer = api.send(event(status=204, response_time_ms=87, timestamp="2025-01-08T15:30:45.123+09:00"))
    assert answer == {"event_id": 1, "alert": None, "duplicate": False}
    row = db.rows("SELECT * FROM events")[0]
    assert (row["id"], row["target_url"], row["status_code"], row["response_time_ms"], row["is_success"],
            row["error_message"]) == (1, URL, 204, 87, 1, None)
    assert row["timestamp"] == "2025-01-08 06:30:45"  # UTC, YYYY-MM-DD HH:MM:SS


@pytest.mark.parametrize("timestamp, stored", [
    ("2025-01-08T15:30:45Z", "2025-01-08 15:30:45"),
    ("2025-01-08T15:30:45.999999+00:00", "2025-01-08 15:30:45"),
    ("2025-01-08T00:30:45-02:00", "2025-01-08 02:30:45"),
    ("0999-01-08T15:30:45Z", "0999-01-08 15:30:45"),        # still four digits for the year
])
def test_timestamps_are_stored_in_utc_text(api, db, timestamp, stored):
    api.send(event(timestamp=timestamp))
    assert db.rows("SELECT timestamp FROM events")[0]["timestamp"] == stored


@pytest.mark.parametrize("timestamp, checked_at", [
    ("2025-01-08T15:30:47.123456+09:00", "2025-01-08 06:30:47.123"),
    ("2025-01-08T15:30:47.9999Z", "2025-01-08 15:30:47.999"),  # cut, never rounded into the next second
    ("2025-01-08T15:30:47Z", "2025-01-08 15:30:47.000"),
])
def test_check_times_are_stored_to_the_millisecond_in_fixed_width(api, db, timestamp, checked_at):
    """events.checked_at and targets.last_check_at: YYYY-MM-DD HH:MM:SS.fff, so text order is time order."""
    api.send(event(timestamp=timestamp))
    assert db.rows("SELECT checked_at FROM events")[0]["checked_at"] == checked_at
    assert db.rows("SELECT last_check_at FROM targets")[0]["last_check_at"] == checked_at
    assert db.rows("SELECT timestamp FROM events")[0]["timestamp"] == checked_at[:19]


def test_a_timeout_with_null_status_and_response_time_is_stored(api, db):
    api.send(event(ok=False, status_code=None, response_time_ms=None, error_message="Request timed out after 5000ms"))
    row = db.rows("SELECT * FROM events")[0]
    assert (row["status_code"], row["response_time_ms"], row["is_success"], row["error_message"]) == (
        None, None, 0, "Request timed out after 5000ms")


def test_optional_fields_may_be_left_out(api, db):
    api.send({"target_url": URL, "timestamp": "2025-01-08T15:30:45Z", "is_success": True})
    assert db.count("events") == 1


def test_a_batch_is_stored_in_order_and_answered_with_events(api, db):
    answer = api.send(event(), event(OTHER), event(status=201))
    assert answer == {"events": [{"event_id": n, "alert": None, "duplicate": False} for n in (1, 2, 3)]}
    assert [(r["id"], r["target_url"]) for r in db.rows("SELECT * FROM events ORDER BY id")] == [
        (1, URL), (2, OTHER), (3, URL)]


def test_a_batch_of_one_is_still_a_batch(api):
    response = api.post("/events", json=[event()])
    assert response.status_code == 201
    assert response.get_json() == {"events": [{"event_id": 1, "alert": None, "duplicate": False}]}


def test_a_batch_of_1000_is_accepted(api, db):
    response = api.post("/events", json=[event()] * 1000)
    assert response.status_code == 201
    assert len(response.get_json()["events"]) == 1000
    assert db.count("events") == 1000


def test_a_batch_of_1001_is_refused_and_nothing_stored(api, db):
    response = api.post("/events", json=[event()] * 1001)
    assert response.status_code == 400
    assert "1000" in response.get_json()["error"]
    assert db.count("events") == 0


def test_an_empty_batch_is_refused(api, db):
    response = api.post("/events", json=[])
    assert response.status_code == 400
    assert "empty" in response.get_json()["error"]
    assert db.count("events") == 0


# --- validation: every bad field is a 400 that names it, and stores nothing --------------------

def _without(field: str) -> dict:
    body = event()
    del body[field]
    return body


BAD_EVENTS = {
    "target_url missing": (_without("target_url"), "target_url"),
    "timestamp missing": (_without("timestamp"), "timestamp"),
    "is_success missing": (_without("is_success"), "is_success"),
    "target_url null": (event(target_url=None), "target_url"),
    "target_url a number": (event(target_url=5), "target_url"),
    "target_url ftp": (event(target_url="ftp://t.example/"), "target_url"),
    "target_url without a host": (event(target_url="http://"), "target_url"),
    "target_url not a url": (event(target_url="example.com"), "target_url"),
    "timestamp not a date": (event(timestamp="yesterday"), "timestamp"),
    "timestamp impossible date": (event(timestamp="2025-13-45T99:00:00Z"), "timestamp"),
    "timestamp a number": (event(timestamp=1736350245), "timestamp"),
    "timestamp before year 1 in UTC": (event(timestamp="0001-01-01T00:00:00+01:00"), "timestamp"),
    "is_success 1": (event(is_success=1), "is_success"),
    "is_success 'true'": (event(is_success="true"), "is_success"),
    "is_success null": (event(is_success=None), "is_success"),
    "status_code true": (event(status_code=True), "status_code"),
    "status_code a string": (event(status_code="503"), "status_code"),
    "status_code a float": (event(status_code=503.0), "status_code"),
    "status_code 99": (event(status_code=99), "status_code"),
    "status_code 600": (event(status_code=600), "status_code"),
    "status_code huge": (event(status_code=10**30), "status_code"),
    "response_time_ms negative": (event(response_time_ms=-1), "response_time_ms"),
    "response_time_ms a float": (event(response_time_ms=12.5), "response_time_ms"),
    "response_time_ms huge": (event(response_time_ms=2**63), "response_time_ms"),
    "response_time_ms false": (event(response_time_ms=False), "response_time_ms"),
    "error_message a number": (event(error_message=5), "error_message"),
    "error_message a list": (event(error_message=["x"]), "error_message"),
    "unknown field": (event(severity="high"), "severity"),
}


@pytest.mark.parametrize("body, field", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_an_invalid_field_is_a_400_naming_it_and_nothing_is_stored(api, db, body, field):
    response = api.post("/events", json=body)
    assert response.status_code == 400
    assert field in response.get_json()["error"]
    assert db.count("events") == 0


@pytest.mark.parametrize("literal, field", [
    ("NaN", "status_code"),
    ("Infinity", "status_code"),
    ("-Infinity", "response_time_ms"),
    ("NaN", "response_time_ms"),
    ("NaN", "is_success"),
])
def test_nan_and_infinity_literals_are_a_400_naming_the_field(api, db, literal, field):
    """Python's json module accepts these non-standard literals; they must still be refused."""
    text = json.dumps(event()).replace(f'"{field}": {json.dumps(event()[field])}', f'"{field}": {literal}')
    assert literal in text
    response = api.post("/events", data=text, content_type="application/json")
    assert response.status_code == 400
    assert field in response.get_json()["error"]
    assert db.count("events") == 0


@pytest.mark.parametrize("body, named", [
    ("[5]", "events[0]"),
    ('[{"target_url": "https://t.example/", "timestamp": "2025-01-08T15:30:45Z", "is_success": true}, "x"]',
     "events[1]"),
    ("[null]", "events[0]"),
    ("[[]]", "events[0]"),
    ('"an event"', "body"),
    ("42", "body"),
    ("true", "body"),
    ("null", "body"),
])
def test_a_body_or_item_that_is_not_an_object_is_a_400(api, db, body, named):
    response = api.post("/events", data=body, content_type="application/json")
    assert response.status_code == 400
    assert named in response.get_json()["error"]
    assert db.count("events") == 0


def test_a_batch_with_one_bad_item_is_refused_whole(api, db):
    response = api.post("/events", json=[event(), event(ok=False), event(status_code=True), event()])
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert "events[2]" in error and "status_code" in error
    assert db.count("events") == 0
    assert db.count("alerts") == 0


@pytest.mark.parametrize("text", ['{"target_url": ', "{'a': 1}", "not json", ""])
def test_malformed_json_is_a_400(api, db, text):
    response = api.post("/events", data=text, content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.get_json()["error"]
    assert db.count("events") == 0


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain"},
                                     {"Content-Type": "application/x-www-form-urlencoded"}],
                         ids=["no content type", "text/plain", "form"])
def test_a_body_that_is_not_declared_json_is_a_415(api, db, headers):
    response = api.post("/events", data=json.dumps(event()), headers=headers)
    assert response.status_code == 415
    assert response.is_json and "JSON" in response.get_json()["error"]
    assert db.count("events") == 0


def test_json_with_a_charset_is_accepted(api):
    response = api.post("/events", data=json.dumps(event()), content_type="application/json; charset=utf-8")
    assert response.status_code == 201


def test_a_body_over_the_limit_is_a_413_in_json(api, db):
    padding = "x" * MAX_BODY_BYTES
    response = api.post("/events", data=json.dumps(event(error_message=padding)), content_type="application/json")
    assert response.status_code == 413
    assert response.is_json and response.get_json()["error"]
    assert db.count("events") == 0


# --- the alert rules through the API (SPEC §5) --------------------------------------------------

def test_first_two_failures_open_nothing(api, db):
    assert api.send(event(ok=False))["alert"] is None
    assert api.send(event(ok=False))["alert"] is None
    assert db.count("alerts") == 0


def test_third_failure_opens_one_alert(api, db, app, console):
    api.send(event(ok=False))
    api.send(event(ok=False))
    answer = api.send(event(ok=False))
    alert = answer["alert"]
    assert alert["event_id"] == answer["event_id"] == 3
    assert (alert["alert_type"], alert["status"], alert["target_url"], alert["resolved_at"]) == (
        "ERROR", "OPEN", URL, None)
    rows = db.rows("SELECT * FROM alerts")
    assert [(r["event_id"], r["alert_type"], r["status"]) for r in rows] == [(3, "ERROR", "OPEN")]
    assert app.extensions["outage"].dispatcher.wait_idle(5)
    assert "[2025-01-08 15:30:45] [ALERT] ERROR - https://t.example/\nStatus: 503 Service Unavailable\n" \
           in console.getvalue()


def test_further_failures_open_nothing_however_many(api, db):
    for _ in range(3):
        api.send(event(ok=False))
    for _ in range(20):
        assert api.send(event(ok=False))["alert"] is None
    assert db.count("alerts") == 1
    assert db.count("events") == 23


def test_a_success_resolves_the_alert_and_sends_recovery(api, db, app, console, settings):
    for _ in range(3):
        api.send(event(ok=False))
    answer = api.send(event(ok=True, status=200, response_time_ms=87))
    assert answer["alert"]["status"] == "RESOLVED"
    assert answer["alert"]["resolved_at"] is not None
    row = db.rows("SELECT * FROM alerts")[0]
    assert (row["status"], row["event_id"]) == ("RESOLVED", 3)
    assert row["resolved_at"] is not None
    assert app.extensions["outage"].dispatcher.wait_idle(5)
    recovery = ("[2025-01-08 15:30:45] [ALERT] RECOVERY - https://t.example/\n"
                "Status: 200 OK\nResponse Time: 87ms\nMessage: Service has been recovered\n")
    assert recovery in console.getvalue()
    assert recovery in settings.log_file.read_text(encoding="utf-8")
    logs = db.rows("SELECT channel, notice_type, status FROM notification_logs WHERE alert_id = ? ORDER BY id",
                   (row["id"],))
    assert [tuple(r) for r in logs] == [("CONSOLE", "ERROR", "SENT"), ("CONSOLE", "RECOVERY", "SENT")]


def test_a_success_with_no_alert_only_resets_the_count(api, db):
    api.send(event(ok=False))
    api.send(event(ok=False))
    assert api.send(event(ok=True))["alert"] is None
    api.send(event(ok=False))
    api.send(event(ok=False))
    assert db.count("alerts") == 0
    assert api.send(event(ok=False))["alert"]["event_id"] == 6


def test_an_acknowledged_alert_still_resolves_on_recovery(api, db):
    alert_id = [api.send(event(ok=False)) for _ in range(3)][-1]["alert"]["id"]
    assert api.patch(f"/alerts/{alert_id}", json={"status": "ACK"}).status_code == 200
    assert api.send(event(ok=False))["alert"] is None  # still deduplicated while ACK
    answer = api.send(event(ok=True))
    assert answer["alert"]["id"] == alert_id
    assert answer["alert"]["status"] == "RESOLVED"
    assert db.rows("SELECT status FROM alerts")[0]["status"] == "RESOLVED"


def test_after_recovery_a_new_outage_opens_a_new_alert(api, db):
    api.send(*[event(ok=False)] * 3, event(ok=True))
    answer = api.send(*[event(ok=False)] * 3)
    assert answer["events"][2]["alert"]["event_id"] == 7
    assert [(r["event_id"], r["status"]) for r in db.rows("SELECT * FROM alerts ORDER BY id")] == [
        (3, "RESOLVED"), (7, "OPEN")]


def test_two_targets_are_independent(api, db):
    api.send(event(URL, ok=False), event(OTHER, ok=False), event(URL, ok=False), event(OTHER, ok=True))
    answer = api.send(event(URL, ok=False))
    assert answer["alert"]["target_url"] == URL  # OTHER's failure and success did not touch URL's count
    for _ in range(2):
        assert api.send(event(OTHER, ok=False))["alert"] is None
    other_alert = api.send(event(OTHER, ok=False))["alert"]
    assert other_alert["target_url"] == OTHER  # URL's active alert does not dedup OTHER's
    api.send(event(URL, ok=True))
    rows = {r["target_url"]: r["status"] for r in db.rows("SELECT * FROM alerts")}
    assert rows == {URL: "RESOLVED", OTHER: "OPEN"}


def test_a_503_with_is_success_true_still_counts_as_a_failure(api, db):
    for _ in range(3):
        answer = api.send(event(ok=True, status=503))
    assert answer["alert"]["alert_type"] == "ERROR"
    assert db.count("alerts") == 1


def test_a_null_status_with_is_success_true_counts_as_a_failure(api, db):
    for _ in range(3):
        answer = api.send(event(ok=True, status_code=None, error_message="Request timed out after 5000ms"))
    assert answer["alert"] is not None


TCP = "tcp://db.example:5432"


def test_tcp_successes_open_nothing_and_tcp_failures_open_an_alert_at_the_threshold(api, db):
    """SPEC §9: a tcp check has no status; the agent's is_success is the verdict."""
    for _ in range(4):
        assert api.send(event(TCP, ok=True, status_code=None))["alert"] is None
    assert db.count("alerts") == 0
    refused = event(TCP, ok=False, status_code=None, error_message="Connection refused")
    assert api.send(refused)["alert"] is None
    assert api.send(refused)["alert"] is None
    assert api.send(refused)["alert"]["status"] == "OPEN"
    assert api.send(event(TCP, ok=True, status_code=None))["alert"]["status"] == "RESOLVED"


@pytest.fixture
def gone_page_in_the_file(tmp_path):
    """A targets file (written before the app loads it) with the http target `gone-page`."""
    (tmp_path / "targets.yaml").write_text(f"targets:\n  - name: gone-page\n    url: {URL}\n"
                                           "    expect_status: [404]\n", encoding="utf-8")


def test_a_file_target_event_judged_a_success_by_the_agent_is_one_even_with_a_404(gone_page_in_the_file, api, db):
    """An http file target whose expect_status lists 404: is_success true is the verdict (SPEC §9)."""
    for _ in range(3):
        assert api.send(event(ok=True, status=404, target="gone-page"))["alert"] is None
    assert db.count("alerts") == 0
    assert [tuple(r) for r in db.rows("SELECT failures_in_a_row FROM targets")] == [(0,)]
    for _ in range(3):
        answer = api.send(event(ok=False, status=200, target="gone-page", error_message="HTTP 200, expected 404"))
    assert answer["alert"]["status"] == "OPEN"


def test_a_late_tcp_success_takes_its_place_as_a_success(api, db):
    """The recount of a late event judges stored events the same way (store.recent_failures)."""
    refused = {"ok": False, "status_code": None, "error_message": "Connection refused"}
    api.send(event(TCP, timestamp="2025-01-08T15:30:50Z", **refused))
    api.send(event(TCP, timestamp="2025-01-08T15:30:55Z", **refused))
    # Late, between the two: the run of failures counted back from the newest check is 1, not 3.
    assert api.send(event(TCP, timestamp="2025-01-08T15:30:52Z", ok=True, status_code=None))["alert"] is None
    assert api.send(event(TCP, timestamp="2025-01-08T15:31:00Z", **refused))["alert"] is None
    assert api.send(event(TCP, timestamp="2025-01-08T15:31:05Z", **refused))["alert"]["status"] == "OPEN"


def test_a_batch_applies_the_rules_event_by_event(api, db):
    answer = api.send(*[event(ok=False)] * 5, event(ok=True), event(ok=True))
    alerts = [item["alert"] for item in answer["events"]]
    assert [a and (a["event_id"], a["status"]) for a in alerts] == [
        None, None, (3, "OPEN"), None, None, (3, "RESOLVED"), None]
    assert db.count("alerts") == 1


def test_one_batch_can_hold_an_outage_its_recovery_and_the_next_outage(api, db):
    answer = api.send(*[event(ok=False)] * 3, event(ok=True), *[event(ok=False)] * 3)
    changed = [(item["event_id"], item["alert"]["id"], item["alert"]["status"])
               for item in answer["events"] if item["alert"]]
    assert changed == [(3, 1, "OPEN"), (4, 1, "RESOLVED"), (7, 2, "OPEN")]
    assert [tuple(r) for r in db.rows("SELECT id, status, event_id, resolved_event_id FROM alerts")] == [
        (1, "RESOLVED", 3, 4), (2, "OPEN", 7, None)]


@with_env(FAILURE_THRESHOLD="1")
def test_spec_example_timeline_leaves_four_events_one_alert_two_console_rows(api, db, app):
    """SPEC §5: success, failure, failure, success with FAILURE_THRESHOLD=1."""
    api.send(event(ok=True))
    api.send(event(ok=False))
    api.send(event(ok=False))
    api.send(event(ok=True))
    assert app.extensions["outage"].dispatcher.wait_idle(5)
    assert db.count("events") == 4
    alerts = db.rows("SELECT * FROM alerts")
    assert [(r["id"], r["alert_type"], r["status"], r["event_id"]) for r in alerts] == [(1, "ERROR", "RESOLVED", 2)]
    assert alerts[0]["resolved_at"] is not None
    logs = db.rows("SELECT alert_id, channel, notice_type, status, retry_count FROM notification_logs ORDER BY id")
    assert [tuple(r) for r in logs] == [(1, "CONSOLE", "ERROR", "SENT", 0), (1, "CONSOLE", "RECOVERY", "SENT", 0)]


@with_env(FAILURE_THRESHOLD="1")
def test_a_batch_reads_its_targets_active_alerts_in_one_query(app, api):
    """The active alert's id and type come in one SELECT on alerts, not a second one for the types."""
    from sqlalchemy import event as sql_event

    api.send(event(ok=False))
    seen: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    engine = app.extensions["outage"].engine
    sql_event.listen(engine, "before_cursor_execute", remember)
    try:
        assert api.send(event(ok=False, timestamp="2025-01-08T15:31:45Z"))["alert"] is None  # failed again: dedup
    finally:
        sql_event.remove(engine, "before_cursor_execute", remember)
    assert len([s for s in seen if "FROM alerts" in s]) == 1
