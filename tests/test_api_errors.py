"""Every error body is {"error", "details"}; every 400 for an event says why in details.code (SPEC §4).

The agent relies on the codes: it drops a spooled event only on `invalid_event`, and keeps it
(and retries) on `unknown_field`, `clock_skew` or any other refusal.
"""

from __future__ import annotations

import json

import pytest

from backend.factory import MAX_BODY_BYTES
from tests.backend_fixtures import (Api, api, app, backend_env, client, console, db, event,  # noqa: F401
                                    settings)

FUTURE = "2999-01-08T15:30:45Z"


def refused(api, body=None, data: str | None = None) -> dict:
    """POST /events, expect a 400 that stored nothing, return its JSON body."""
    response = (api.post("/events", json=body) if data is None
                else api.post("/events", data=data, content_type="application/json"))
    assert response.status_code == 400, response.get_data(as_text=True)
    return response.get_json()


# --- details.code for one event ------------------------------------------------------------------

@pytest.mark.parametrize("body, code, field", [
    (event(status_code=99), "invalid_event", "status_code"),
    (event(timestamp="yesterday"), "invalid_event", "timestamp"),
    ({"timestamp": "2025-01-08T15:30:45Z", "is_success": True}, "invalid_event", "target_url"),
    (event(severity="high"), "unknown_field", "severity"),
    (event(timestamp=FUTURE), "clock_skew", "timestamp"),
], ids=["bad value", "bad timestamp", "missing field", "unknown field", "clock ahead"])
def test_a_refused_event_carries_a_code_and_the_field(api, db, body, code, field):
    answer = refused(api, body)
    assert (answer["details"]["code"], answer["details"]["field"]) == (code, field)
    assert "index" not in answer["details"]  # one event, not a batch
    assert answer["error"].startswith(field)
    assert db.count("events") == 0


@pytest.mark.parametrize("body", [
    event(severity="high", status_code=99),
    event(severity="high", timestamp="yesterday"),
    event(severity="high", timestamp=FUTURE),
    {"severity": "high", "is_success": "maybe"},
], ids=["and a bad value", "and a bad timestamp", "and a clock ahead", "and missing fields"])
def test_an_unknown_field_wins_over_other_problems_of_its_event(api, body):
    """A newer agent may send a field this backend does not know: the event must not be dropped."""
    answer = refused(api, body)
    assert (answer["details"]["code"], answer["details"]["field"]) == ("unknown_field", "severity")


def test_an_invalid_value_wins_over_a_clock_ahead(api):
    answer = refused(api, event(timestamp=FUTURE, status_code=99))
    assert (answer["details"]["code"], answer["details"]["field"]) == ("invalid_event", "status_code")


# --- details.code, index and field for a batch ---------------------------------------------------

@pytest.mark.parametrize("items, code, index, field", [
    ([event(), event(status_code=True), event(severity="x")], "invalid_event", 1, "events[1].status_code"),
    ([event(), event(), event(severity="x"), event(status_code=True)], "unknown_field", 2, "events[2].severity"),
    ([event(), event(timestamp=FUTURE), event(status_code=True)], "clock_skew", 1, "events[1].timestamp"),
    ([event(), event(), event(), "x"], "invalid_event", 3, "events[3]"),
    ([event(), None], "invalid_event", 1, "events[1]"),
])
def test_a_batch_reports_its_first_problem_with_index_and_field(api, db, items, code, index, field):
    answer = refused(api, items)
    assert answer["details"]["code"] == code
    assert (answer["details"]["index"], answer["details"]["field"]) == (index, field)
    assert answer["error"].startswith(field)
    assert (db.count("events"), db.count("alerts")) == (0, 0)


# --- 400s about the request as a whole -----------------------------------------------------------

@pytest.mark.parametrize("data, words", [
    ('{"target_url": ', "not valid JSON"),
    ("", "not valid JSON"),
    ("[]", "empty"),
    (json.dumps([event()] * 1001), "at most 1000"),
    ("null", "The body must be an event object or an array of them."),
    ("42", "The body must be an event object or an array of them."),
    ("-1.5", "The body must be an event object or an array of them."),
    ('"an event"', "The body must be an event object or an array of them."),
    ("true", "The body must be an event object or an array of them."),
    ("false", "The body must be an event object or an array of them."),
], ids=["malformed", "empty body", "empty batch", "batch too large", "null", "number", "float", "string",
        "true", "false"])
def test_a_request_refused_as_a_whole_is_invalid_request(api, db, data, words):
    answer = refused(api, data=data)
    assert words in answer["error"]
    assert answer["details"] == {"code": "invalid_request"}
    assert db.count("events") == 0


# --- one shape for every error -------------------------------------------------------------------

def assert_error_shape(response, status: int) -> None:
    assert response.status_code == status
    body = response.get_json()
    assert set(body) == {"error", "details"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], dict)


def test_a_401_has_details(client):
    assert_error_shape(Api(client, key=None).get("/alerts"), 401)


def test_a_404_has_details(api):
    assert_error_shape(api.get("/alerts/999"), 404)
    assert_error_shape(api.get("/nothing-here"), 404)


def test_a_405_has_details(api):
    assert_error_shape(api.request("DELETE", "/alerts/1"), 405)


def test_a_409_has_details(api):
    alert = api.send(*[event(ok=False)] * 3, event(ok=True))["events"][3]["alert"]
    assert_error_shape(api.patch(f"/alerts/{alert['id']}", json={"status": "ACK"}), 409)


def test_a_413_has_details(api):
    data = json.dumps(event(error_message="x" * MAX_BODY_BYTES))
    assert_error_shape(api.post("/events", data=data, content_type="application/json"), 413)


def test_a_415_has_details(api):
    assert_error_shape(api.post("/events", data=json.dumps(event()), content_type="text/plain"), 415)


def test_a_500_has_details(api, app):
    """A database that lost a table: the one failure here that is not the request's fault."""
    with app.extensions["outage"].engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE alerts RENAME TO alerts_gone")
    assert_error_shape(api.get("/alerts"), 500)


def test_the_openapi_document_requires_details_in_every_error(client):
    error = client.get("/openapi.json").get_json()["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"error", "details"}
