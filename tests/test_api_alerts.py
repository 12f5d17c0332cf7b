"""GET /alerts, GET /alerts/<id>, PATCH /alerts/<id> (SPEC §4)."""

from __future__ import annotations

import pytest

from tests.backend_fixtures import (URL, api, app, backend_env, client, console, db, event,  # noqa: F401
                                    settings, with_env)

OTHER = "http://other.example/"
ALERT_KEYS = {"id", "event_id", "target_url", "alert_type", "status", "created_at", "resolved_at", "message"}


def open_alert(api, target_url: str = URL) -> dict:
    """Three failures in a row: the third answer carries the new alert."""
    return api.send(*[event(target_url, ok=False)] * 3)["events"][2]["alert"]


def recover(api, target_url: str = URL) -> dict:
    return api.send(event(target_url, ok=True))["alert"]


# --- GET /alerts --------------------------------------------------------------------------------

def test_no_alerts_is_an_empty_list(api):
    response = api.get("/alerts")
    assert response.status_code == 200
    assert response.get_json()["alerts"] == []


def test_alerts_are_listed_newest_first_with_every_spec_field(api):
    first = open_alert(api, URL)
    second = open_alert(api, OTHER)
    alerts = api.get("/alerts").get_json()["alerts"]
    assert [a["id"] for a in alerts] == [second["id"], first["id"]]
    assert ALERT_KEYS <= set(alerts[0])
    assert alerts[1]["event_id"] == 3 and alerts[1]["target_url"] == URL
    assert alerts[1]["message"].startswith("Service is down")


def test_alerts_filter_by_status(api):
    resolved = open_alert(api, URL)
    recover(api, URL)
    still_open = open_alert(api, OTHER)
    assert [a["id"] for a in api.get("/alerts?status=RESOLVED").get_json()["alerts"]] == [resolved["id"]]
    assert [a["id"] for a in api.get("/alerts?status=OPEN").get_json()["alerts"]] == [still_open["id"]]
    assert api.get("/alerts?status=ACK").get_json()["alerts"] == []


def test_alerts_filter_by_target_url(api):
    open_alert(api, URL)
    other = open_alert(api, OTHER)
    response = api.get("/alerts", query_string={"target_url": OTHER})
    assert [a["id"] for a in response.get_json()["alerts"]] == [other["id"]]
    assert api.get("/alerts", query_string={"target_url": "https://nobody.example/"}).get_json()["alerts"] == []


@with_env(FAILURE_THRESHOLD="1")
def test_alerts_page_by_limit_and_offset_with_a_default_of_50(api, db):
    api.send(*[event(ok=ok) for _ in range(60) for ok in (False, True)])  # 60 alerts, each opened and resolved
    assert db.count("alerts") == 60
    default = api.get("/alerts").get_json()["alerts"]
    assert [a["id"] for a in default] == list(range(60, 10, -1))
    assert [a["id"] for a in api.get("/alerts?limit=5").get_json()["alerts"]] == [60, 59, 58, 57, 56]
    assert [a["id"] for a in api.get("/alerts?limit=5&offset=57").get_json()["alerts"]] == [3, 2, 1]
    assert len(api.get("/alerts?limit=500").get_json()["alerts"]) == 60
    assert api.get("/alerts?offset=60").get_json()["alerts"] == []


@pytest.mark.parametrize("query, field", [
    ("limit=0", "limit"),
    ("limit=501", "limit"),
    ("limit=-1", "limit"),
    ("limit=ten", "limit"),
    ("limit=2.5", "limit"),
    ("offset=-1", "offset"),
    ("offset=x", "offset"),
    ("status=open", "status"),
    ("status=CLOSED", "status"),
])
def test_an_invalid_query_parameter_is_a_400_naming_it(api, query, field):
    response = api.get(f"/alerts?{query}")
    assert response.status_code == 400
    assert field in response.get_json()["error"]


# --- GET /alerts/<id> ---------------------------------------------------------------------------

def test_one_alert_comes_with_its_notification_rows(api, app):
    alert = open_alert(api)
    recover(api)
    assert app.extensions["outage"].dispatcher.wait_idle(5)
    response = api.get(f"/alerts/{alert['id']}")
    assert response.status_code == 200
    body = response.get_json()
    assert ALERT_KEYS <= set(body)
    assert (body["id"], body["status"], body["event_id"]) == (alert["id"], "RESOLVED", 3)
    rows = body["notifications"]
    assert [(n["alert_id"], n["channel"], n["notice_type"], n["status"], n["retry_count"]) for n in rows] == [
        (alert["id"], "CONSOLE", "ERROR", "SENT", 0), (alert["id"], "CONSOLE", "RECOVERY", "SENT", 0)]
    assert all(n["attempted_at"] for n in rows)


def test_an_unknown_alert_is_a_404_in_json(api):
    response = api.get("/alerts/999")
    assert response.status_code == 404
    assert "999" in response.get_json()["error"]


# --- PATCH /alerts/<id> -------------------------------------------------------------------------

def test_acknowledging_an_open_alert_sets_acknowledged_at(api, db):
    alert = open_alert(api)
    response = api.patch(f"/alerts/{alert['id']}", json={"status": "ACK"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "ACK"
    row = db.rows("SELECT * FROM alerts")[0]
    assert row["status"] == "ACK"
    assert row["acknowledged_at"] is not None
    assert row["resolved_at"] is None


def test_resolving_an_open_alert_by_hand_sets_resolved_at(api, db):
    alert = open_alert(api)
    response = api.patch(f"/alerts/{alert['id']}", json={"status": "RESOLVED"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "RESOLVED"
    assert response.get_json()["resolved_at"] is not None
    assert db.rows("SELECT status FROM alerts")[0]["status"] == "RESOLVED"


def test_resolving_an_acknowledged_alert(api, db):
    alert = open_alert(api)
    api.patch(f"/alerts/{alert['id']}", json={"status": "ACK"})
    response = api.patch(f"/alerts/{alert['id']}", json={"status": "RESOLVED"})
    assert response.status_code == 200
    row = db.rows("SELECT * FROM alerts")[0]
    assert row["status"] == "RESOLVED" and row["resolved_at"] is not None and row["acknowledged_at"] is not None


def test_acknowledging_twice_is_a_no_op(api, db):
    alert = open_alert(api)
    first = api.patch(f"/alerts/{alert['id']}", json={"status": "ACK"}).get_json()
    second = api.patch(f"/alerts/{alert['id']}", json={"status": "ACK"})
    assert second.status_code == 200
    assert second.get_json() == first  # acknowledged_at is not moved
    assert db.rows("SELECT status FROM alerts")[0]["status"] == "ACK"


@pytest.mark.parametrize("requested", ["ACK", "RESOLVED"])
@pytest.mark.parametrize("how", ["by hand", "by recovery"])
def test_nothing_moves_a_resolved_alert(api, db, requested, how):
    alert = open_alert(api)
    if how == "by hand":
        api.patch(f"/alerts/{alert['id']}", json={"status": "RESOLVED"})
    else:
        recover(api)
    before = dict(db.rows("SELECT * FROM alerts")[0])
    response = api.patch(f"/alerts/{alert['id']}", json={"status": requested})
    assert response.status_code == 409
    assert "RESOLVED" in response.get_json()["error"]
    assert dict(db.rows("SELECT * FROM alerts")[0]) == before


@pytest.mark.parametrize("body", [
    {"status": "OPEN"},
    {"status": "ack"},
    {"status": "CLOSED"},
    {"status": None},
    {"status": 1},
    {},
    {"status": "ACK", "note": "on it"},
    ["ACK"],
    "ACK",
])
def test_a_bad_status_change_is_a_400(api, db, body):
    alert = open_alert(api)
    response = api.patch(f"/alerts/{alert['id']}", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]
    assert db.rows("SELECT status FROM alerts")[0]["status"] == "OPEN"


def test_a_status_change_that_is_not_json_is_a_415(api):
    alert = open_alert(api)
    assert api.patch(f"/alerts/{alert['id']}", data="status=ACK").status_code == 415


def test_changing_an_unknown_alert_is_a_404(api):
    response = api.patch("/alerts/999", json={"status": "ACK"})
    assert response.status_code == 404
    assert "999" in response.get_json()["error"]
