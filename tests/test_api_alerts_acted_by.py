"""Who acted on an alert (SPEC §10): acknowledged_by / resolved_by, set by PATCH's "by" (api or cli)."""

from __future__ import annotations

import pytest

from backend.rules import AlertStatus
from tests.backend_fixtures import (URL, api, app, backend_env, client, console, db, event,  # noqa: F401
                                    settings, with_env)


def open_alert(api) -> dict:
    return api.send(*[event(URL, ok=False)] * 3)["events"][2]["alert"]


def test_a_new_alert_says_nobody_acted_yet(api):
    alert = open_alert(api)
    assert (alert["acknowledged_by"], alert["resolved_by"]) == (None, None)


def test_a_patch_without_by_is_the_api(api, db):
    alert = open_alert(api)
    acked = api.patch(f"/alerts/{alert['id']}", json={"status": "ACK"}).get_json()
    assert (acked["acknowledged_by"], acked["resolved_by"]) == ("api", None)
    resolved = api.patch(f"/alerts/{alert['id']}", json={"status": "RESOLVED"}).get_json()
    assert (resolved["acknowledged_by"], resolved["resolved_by"]) == ("api", "api")
    assert db.rows("SELECT acknowledged_by, resolved_by FROM alerts")[0] == ("api", "api")


def test_the_cli_says_by_cli_and_get_shows_it(api):
    alert = open_alert(api)
    api.patch(f"/alerts/{alert['id']}", json={"status": "RESOLVED", "by": "cli"})
    shown = api.get(f"/alerts/{alert['id']}").get_json()
    assert (shown["acknowledged_by"], shown["resolved_by"]) == (None, "cli")
    assert api.get("/alerts").get_json()["alerts"][0]["resolved_by"] == "cli"


def test_acknowledging_twice_keeps_who_acknowledged_first(api):
    alert = open_alert(api)
    api.patch(f"/alerts/{alert['id']}", json={"status": "ACK", "by": "cli"})
    again = api.patch(f"/alerts/{alert['id']}", json={"status": "ACK"}).get_json()
    assert again["acknowledged_by"] == "cli"


@pytest.mark.parametrize("by", ["dashboard", "telegram:@mallory", "API", "", None, 1])
def test_a_patch_may_not_claim_another_actor(api, db, by):
    alert = open_alert(api)
    response = api.patch(f"/alerts/{alert['id']}", json={"status": "ACK", "by": by})
    assert response.status_code == 400
    assert response.get_json()["details"]["field"] == "by" and "by" in response.get_json()["error"]
    assert db.rows("SELECT status, acknowledged_by FROM alerts")[0] == ("OPEN", None)


def test_the_dashboard_acts_through_the_service_by_name(app, api):
    alert = open_alert(api)
    changed = app.extensions["outage"].service.change_alert_status(alert["id"], AlertStatus.ACK, "dashboard")
    assert changed["acknowledged_by"] == "dashboard"


def test_a_recovery_resolves_with_nobody_named(api):
    """resolved_by stays null: nobody acted; resolved_event_id names the check that resolved it."""
    alert = open_alert(api)
    api.patch(f"/alerts/{alert['id']}", json={"status": "ACK"})
    api.send(event(URL, ok=True))
    shown = api.get(f"/alerts/{alert['id']}").get_json()
    assert shown["status"] == "RESOLVED" and shown["resolved_by"] is None and shown["resolved_event_id"]
    assert shown["acknowledged_by"] == "api"


def test_the_openapi_document_shows_who_acted(client):
    document = client.get("/openapi.json").get_json()
    alert = document["components"]["schemas"]["Alert"]["properties"]
    assert {"acknowledged_by", "resolved_by"} <= set(alert)
    body = document["paths"]["/alerts/{alert_id}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["by"]["enum"] == ["api", "cli"]
