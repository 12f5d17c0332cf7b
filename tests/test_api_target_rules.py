"""Per-target rules through the app (SPEC §8, §9): identity by name, settings from the file, WARNINGs, channels."""

from __future__ import annotations

import pytest

from backend.validation import parse_events
from tests.backend_fixtures import (URL, api, app, backend_env, client, console, db, event,  # noqa: F401
                                    settings, with_env, targets_yaml)

SHOP = "https://shop.example/health"
TARGETS = f"""\
defaults:
  success_threshold: 2
targets:
  - name: shop
    url: {SHOP}
    failure_threshold: 2
    max_response_time_ms: 800
    tls_expiry_days: 14
  - name: quiet
    url: https://quiet.example/
    failure_threshold: 1
    channels: [telegram]
"""



def at(second: int) -> str:
    return f"2025-01-08T15:{30 + second // 60:02d}:{second % 60:02d}Z"


def send(api, second: int, url: str = SHOP, **fields) -> dict:
    return api.send(event(url, timestamp=at(second), **fields))


def deliveries(db) -> list[tuple]:
    return [tuple(r) for r in db.rows("SELECT a.target, d.notice_type, d.channel FROM deliveries d "
                                      "JOIN alerts a ON a.id = d.alert_id ORDER BY d.id")]


def test_an_event_without_a_name_belongs_to_the_one_file_target_with_its_url(targets_yaml, api, db):
    send(api, 0, ok=False)
    alert = send(api, 1, ok=False)["alert"]  # the file's failure_threshold 2, not FAILURE_THRESHOLD 3
    assert (alert["target"], alert["target_url"], alert["alert_type"]) == ("shop", SHOP, "ERROR")
    assert db.rows("SELECT DISTINCT target FROM events") == [("shop",)]
    assert db.rows("SELECT name, failures_in_a_row FROM targets") == [("shop", 2)]
    assert [a["id"] for a in api.get("/alerts?target=shop").get_json()["alerts"]] == [alert["id"]]
    assert api.get("/alerts?target=quiet").get_json()["alerts"] == []
    assert [a["target"] for a in api.get(f"/alerts?target_url={SHOP}").get_json()["alerts"]] == ["shop"]
    assert api.get(f"/alerts/{alert['id']}").get_json()["target"] == "shop"
    shop = api.get("/targets").get_json()["targets"][0]
    assert (shop["state"], shop["failures_in_a_row"], shop["alert"]["id"]) == ("DOWN", 2, alert["id"])


def test_recovery_needs_success_threshold_successes_in_a_row(targets_yaml, api):
    send(api, 0, ok=False)
    send(api, 1, ok=False)
    assert send(api, 2)["alert"] is None          # defaults: success_threshold 2
    send(api, 3, ok=False)
    assert send(api, 4)["alert"] is None
    assert send(api, 5)["alert"]["status"] == "RESOLVED"


def test_a_target_url_not_in_the_file_keeps_the_env_threshold_and_recovers_at_once(targets_yaml, api):
    for second in range(2):
        assert send(api, second, URL, ok=False)["alert"] is None
    alert = send(api, 2, URL, ok=False)["alert"]
    assert (alert["target"], alert["target_url"]) == (URL, URL)
    assert send(api, 3, URL)["alert"]["status"] == "RESOLVED"


def test_an_event_naming_a_target_not_in_the_file_is_stored_but_judged_by_no_rule(targets_yaml, api, db):
    for second in range(5):
        assert send(api, second, ok=False, target="gone")["alert"] is None
    assert db.count("events") == 5 and db.count("alerts") == 0 and db.count("targets") == 0
    assert db.rows("SELECT DISTINCT target FROM events") == [("gone",)]


def test_slow_checks_open_a_warning_and_an_outage_replaces_it_silently(targets_yaml, api, app, db, console):
    assert send(api, 0, response_time_ms=950)["alert"] is None
    warning = send(api, 1, response_time_ms=990)["alert"]
    assert (warning["alert_type"], warning["status"], warning["target"]) == ("WARNING", "OPEN", "shop")
    assert warning["message"] == "response time 990 ms is over 800 ms (2 checks in a row)"
    assert send(api, 2, response_time_ms=990)["alert"] is None   # dedup
    assert send(api, 3, ok=False)["alert"] is None
    error = send(api, 4, ok=False)["alert"]
    assert (error["alert_type"], error["status"]) == ("ERROR", "OPEN")
    assert api.get(f"/alerts/{warning['id']}").get_json()["status"] == "RESOLVED"
    assert app.extensions["outage"].dispatcher.wait_idle(5)
    assert deliveries(db) == [("shop", "WARNING", "CONSOLE"), ("shop", "ERROR", "CONSOLE")]  # no RECOVERY
    assert ("[2025-01-08 15:30:01] [ALERT] WARNING - https://shop.example/health\nStatus: 200 OK\n"
            "Response Time: 990ms\nMessage: response time 990 ms is over 800 ms (2 checks in a row)\n"
            ) in console.getvalue()


def test_a_certificate_expiring_within_tls_expiry_days_opens_a_warning_that_recovers(targets_yaml, api, app, db):
    expiring = {"cert_expires_at": "2025-01-11T15:30:00Z"}
    warning = send(api, 0, **expiring)["alert"]
    assert (warning["alert_type"], warning["message"]) == (
        "WARNING", "certificate expires in 3 days (2025-01-11 15:30 UTC)")
    assert db.rows("SELECT cert_expires_at FROM events") == [("2025-01-11 15:30:00",)]
    renewed = {"cert_expires_at": "2025-04-11T15:30:00+09:00"}
    assert send(api, 1, **renewed)["alert"] is None            # success_threshold 2
    assert send(api, 2, **renewed)["alert"]["status"] == "RESOLVED"
    assert app.extensions["outage"].dispatcher.wait_idle(5)
    assert deliveries(db) == [("shop", "WARNING", "CONSOLE"), ("shop", "RECOVERY", "CONSOLE")]


def test_notices_go_only_to_the_channels_the_target_names(targets_yaml, api, app, db):
    alert = send(api, 0, "https://quiet.example/", ok=False)["alert"]
    assert alert["target"] == "quiet"
    assert db.count("deliveries") == 0   # telegram is not configured here; console is not named


def test_a_target_removed_from_the_file_has_its_alert_resolved_without_a_notice(targets_yaml, api, app, db):
    alert = send(api, 0, "https://quiet.example/", ok=False)["alert"]
    targets_yaml.write_text(TARGETS.split("  - name: quiet")[0], encoding="utf-8")
    assert api.post("/targets/reload").get_json()["removed"] == 1
    resolved = api.get(f"/alerts/{alert['id']}").get_json()
    assert resolved["status"] == "RESOLVED" and resolved["resolved_at"] is not None
    assert db.count("deliveries") == 0 and db.rows("SELECT name FROM targets") == []


def test_at_once_opens_an_error_on_the_first_failure_whatever_the_threshold(targets_yaml, app, db):
    service = app.extensions["outage"].service
    [first] = service.record_events(parse_events(event(SHOP, ok=False, timestamp=at(0))))
    assert first.alert is None  # failure_threshold 2
    [recorded] = service.record_events(parse_events(event(URL, ok=False, timestamp=at(1))), at_once=True)
    assert (recorded.alert["alert_type"], recorded.alert["target"]) == ("ERROR", URL)


def test_events_store_the_agents_phase_times(api, db):
    api.send(event(dns_ms=0.5, connect_ms=1, tls_ms=3.25, first_byte_ms=12.0,
                   cert_expires_at="2026-12-04T10:00:00+00:00"))
    assert db.rows("SELECT dns_ms, connect_ms, tls_ms, first_byte_ms, cert_expires_at FROM events") == [
        (0.5, 1.0, 3.25, 12.0, "2026-12-04 10:00:00")]


@pytest.mark.parametrize("field, value, problem", [
    ("dns_ms", -1, "must be at least 0"),
    ("tls_ms", "3", "must be a number or null"),
    ("first_byte_ms", 1e12, "must be at most 86400000"),
    ("cert_expires_at", "2026-12-04T10:00:00", "must include a time zone, such as 2025-01-08T15:30:45Z or +09:00"),
    ("cert_expires_at", "soon", "must be an ISO 8601 date-time such as 2025-01-08T15:30:45Z"),
])
def test_bad_phase_times_or_certificate_expiry_are_refused_naming_the_field(api, field, value, problem):
    response = api.post("/events", json=event(**{field: value}))
    assert response.status_code == 400
    assert response.get_json()["details"] == {"code": "invalid_event", "field": field, "problem": problem}


def test_the_openapi_document_has_the_new_event_fields_and_the_alerts_target(client):
    document = client.get("/openapi.json").get_json()
    event_fields = document["components"]["schemas"]["Event"]["properties"]
    assert {"dns_ms", "connect_ms", "tls_ms", "first_byte_ms", "cert_expires_at"} <= set(event_fields)
    assert {"type": "string", "format": "date-time"} in event_fields["cert_expires_at"]["anyOf"]
    assert "target" in document["components"]["schemas"]["Alert"]["required"]
    assert "target" in [p["name"] for p in document["paths"]["/alerts"]["get"]["parameters"]]


def test_events_worked_out_before_the_lock_against_an_older_file_are_worked_out_again(targets_yaml, api, app):
    # Each request resolves its events against the file version this process read last, before it
    # waits for the write lock; if another version is current under the lock, that one decides.
    rules = app.extensions["outage"].service.rules
    assert send(api, 0, ok=False)["alert"] is None  # shop's failure_threshold 2: one failure of two
    seen = rules.last_book()
    targets_yaml.write_text(TARGETS.replace("    failure_threshold: 2\n", "    failure_threshold: 3\n"), encoding="utf-8")
    assert api.post("/targets/reload").status_code == 200
    assert rules.last_book() is seen  # nothing has read the new version in this process yet
    assert send(api, 1, ok=False)["alert"] is None  # worked out with threshold 2 (an alert), stored with 3
    assert rules.last_book() is not seen
    assert send(api, 2, ok=False)["alert"]["alert_type"] == "ERROR"
