"""Push targets through the app factory (SPEC §9): ping URLs, /ping/<token>, /ping/<token>/fail."""

import logging
import re

import pytest

from tests.backend_fixtures import (Api, api, app, backend_env, client, console, db, event,  # noqa: F401
                                    settings, with_env, targets_yaml)

NAME = "nightly backup/db"  # any character: its target_url percent-encodes it
PUSH_URL = "push://nightly%20backup%2Fdb"

TARGETS = f"""\
targets:
  - url: https://shop.example/health
  - name: '{NAME}'
    kind: push
    period: 86400
    grace: 3600
"""



def ping_url(api) -> str:
    push = [t for t in api.get("/targets").get_json()["targets"] if t["kind"] == "push"]
    return push[0]["ping_url"]


def token_of(url: str) -> str:
    return url.rsplit("/ping/", 1)[1]


def test_get_targets_shows_a_ping_url_for_push_targets_only(targets_yaml, api):
    shop, push = api.get("/targets", base_url="http://127.0.0.1:8000").get_json()["targets"]
    assert "ping_url" not in shop
    assert re.fullmatch(r"http://127\.0\.0\.1:8000/ping/[A-Za-z0-9_-]{32}", push["ping_url"])  # 192 bits
    assert push["state"] == "UNKNOWN"


def test_the_token_stays_when_the_target_changes_and_its_clock_keeps_its_first_load(targets_yaml, api, db):
    before = ping_url(api)
    loaded_at = db.rows("SELECT loaded_at FROM file_targets WHERE kind = 'push'")[0]["loaded_at"]
    targets_yaml.write_text(TARGETS.replace("period: 86400", "period: 3600"), encoding="utf-8")
    assert api.post("/targets/reload").get_json()["changed"] == 1
    assert ping_url(api) == before
    assert db.rows("SELECT loaded_at FROM file_targets WHERE kind = 'push'")[0]["loaded_at"] == loaded_at
    # An http target that becomes a push target gets a token of its own.
    targets_yaml.write_text("targets:\n  - {name: shop, kind: push, period: 60, grace: 0}\n", encoding="utf-8")
    api.post("/targets/reload")
    assert token_of(ping_url(api)) != token_of(before)


@with_env(FAILURE_THRESHOLD="3")
def test_a_ping_stores_a_success_and_a_ping_to_fail_opens_an_error_at_once(targets_yaml, app, api, client, db,
                                                                            console):
    path = "/ping/" + token_of(ping_url(api))
    answer = client.get(path)  # no API key: cron jobs only know the URL
    assert (answer.status_code, answer.get_json()) == (200, {"ok": True})

    answer = client.post(path + "/fail", data=b"backup failed:\n disk full\x00\x1b[31m" + b"x" * 5000)
    assert answer.status_code == 200
    [alert] = api.get("/alerts", query_string={"target_url": PUSH_URL}).get_json()["alerts"]
    assert (alert["alert_type"], alert["status"]) == ("ERROR", "OPEN")  # one failure, though the threshold is 3
    assert alert["message"].startswith("Service is down: backup failed: disk full [31mxxx")
    assert len(alert["message"]) < 600
    state = api.get("/targets").get_json()["targets"][1]
    assert (state["state"], state["alert"]["id"]) == ("DOWN", alert["id"])

    assert client.post(path).status_code == 200  # the next ping resolves it
    assert api.get(f"/alerts/{alert['id']}").get_json()["status"] == "RESOLVED"
    rows = db.rows("SELECT target_url, target, is_success, agent FROM events ORDER BY id")
    assert [tuple(r) for r in rows] == [(PUSH_URL, NAME, ok, None) for ok in (1, 0, 1)]
    assert app.extensions["outage"].dispatcher.wait_idle(5)
    assert f"ERROR - {PUSH_URL}" in console.getvalue() and f"RECOVERY - {PUSH_URL}" in console.getvalue()


def test_a_fail_without_a_body_says_it_was_reported(targets_yaml, api, client):
    assert client.get("/ping/" + token_of(ping_url(api)) + "/fail").status_code == 200
    [alert] = api.get("/alerts").get_json()["alerts"]
    assert alert["message"] == "Service is down: failure reported by a ping to /fail"


def test_an_unknown_token_is_one_sentence_404_stores_nothing_and_no_token_is_logged(targets_yaml, api, client, db,
                                                                                    caplog):
    token = token_of(ping_url(api))
    caplog.set_level(logging.INFO)
    for path in ("/ping/not-a-token", "/ping/not-a-token/fail"):
        answer = client.post(path)
        assert answer.status_code == 404
        assert answer.get_json() == {"error": "No push target has this ping URL; GET /targets shows each push "
                                              "target's ping_url.", "details": {}}
    assert db.count("events") == 0
    assert client.put(f"/ping/{token}").status_code == 405
    assert client.get(f"/ping/{token}/other").status_code == 404
    assert client.get(f"/ping/{token}").status_code == 200
    assert token not in caplog.text and "not-a-token" not in caplog.text
    assert f"ping of push target {NAME}: ok" in caplog.text
    assert "/ping/<token>" in caplog.text


def test_clients_cannot_post_events_for_push_urls(targets_yaml, api):
    answer = api.post("/events", json=event(PUSH_URL))
    assert answer.status_code == 400
    assert answer.get_json()["details"]["field"] == "target_url"


def test_the_ping_routes_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert set(paths["/ping/{token}"]) == {"get", "post"} and set(paths["/ping/{token}/fail"]) == {"get", "post"}
    assert paths["/ping/{token}"]["get"]["security"] == []


NO_TARGET = {"error": "No push target has this ping URL; GET /targets shows each push target's ping_url.",
             "details": {}}


@pytest.mark.parametrize("token", ["%00", "abc%00def", "x" * 5000])
def test_a_nul_or_over_long_token_is_the_usual_404(targets_yaml, api, client, db, token):
    for path in (f"/ping/{token}", f"/ping/{token}/fail"):
        answer = client.get(path)
        assert (answer.status_code, answer.get_json()) == (404, NO_TARGET)
    assert db.count("events") == 0


def test_a_failing_statement_logs_no_parameters_so_no_ping_token(targets_yaml, app, api, client, caplog):
    token = token_of(ping_url(api))
    caplog.set_level(logging.INFO)
    engine = app.extensions["outage"].engine
    with engine.begin() as conn:  # every lookup of a token now fails
        conn.exec_driver_sql("ALTER TABLE file_targets RENAME TO file_targets_away")
    try:
        assert client.get(f"/ping/{token}").status_code == 500
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE file_targets_away RENAME TO file_targets")
    assert "file_targets" in caplog.text  # the error itself is logged, its statement's parameters are not
    assert token not in caplog.text
