"""Silences, maintenance windows and paused targets through the app (SPEC §11): the API, suppression, release."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from backend.suppression import release_ended
from backend.time_text import check_time_text, precise_text
from tests.backend_fixtures import (Api, api, app, backend_env, client, console, db, event,  # noqa: F401
                                    settings, with_env, targets_yaml)
from tests.support.databases import IS_POSTGRES
from tests.support.procs import wait_until

TARGETS = """\
targets:
  - {name: shop, url: "https://shop.example/", tags: [prod]}
  - {name: blog, url: "https://blog.example/"}
maintenance:
  - {name: always, match: blog, cron: "* * * * *", duration: 1h}
"""


def iso(minutes: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(minutes=minutes)).isoformat()


def fail(api, name: str, url: str) -> dict:
    return api.send(event(url, ok=False, target=name))["alert"]


def logs(db, alert_id: int) -> list[tuple]:
    return [(r["notice_type"], r["status"], r["suppressed_by"], r["silence_id"]) for r in db.rows(
        "SELECT * FROM notification_logs WHERE alert_id = ? ORDER BY id", (alert_id,))]


def test_silences_are_created_listed_and_ended_keeping_their_rows(targets_yaml, api):
    active = api.post("/silences", json={"match": "tag:prod", "ends_at": iso(60), "reason": "deploy"})
    assert active.status_code == 201
    body = active.get_json()
    assert (body["match"], body["reason"], body["state"], body["ended_early_at"]) == ("tag:prod", "deploy",
                                                                                      "active", None)
    assert body["starts_at"].endswith("Z") and body["ends_at"].endswith("Z")
    upcoming = api.post("/silences", json={"match": "web-*", "starts_at": iso(30), "ends_at": iso(90)}).get_json()
    assert upcoming["state"] == "upcoming" and upcoming["reason"] == ""

    assert [s["id"] for s in api.get("/silences").get_json()["silences"]] == [body["id"], upcoming["id"]]
    ended = api.request("DELETE", f"/silences/{body['id']}")
    assert ended.status_code == 200
    assert ended.get_json()["state"] == "ended" and ended.get_json()["ended_early_at"] is not None
    assert [s["id"] for s in api.get("/silences").get_json()["silences"]] == [upcoming["id"]]
    assert [s["id"] for s in api.get("/silences?all=true").get_json()["silences"]] == [upcoming["id"], body["id"]]
    assert api.request("DELETE", f"/silences/{body['id']}").get_json() == ended.get_json()  # already over
    assert api.request("DELETE", "/silences/999").status_code == 404
    cancelled = api.request("DELETE", f"/silences/{upcoming['id']}").get_json()  # before it began: it never will
    assert cancelled["state"] == "ended" and cancelled["starts_at"] == cancelled["ends_at"]


def test_a_bad_silence_stores_nothing_and_the_api_key_is_required(targets_yaml, api, client, db):
    refused = api.post("/silences", json={"match": "shop", "ends_at": "2030-01-01T00:00:00"})
    assert refused.status_code == 400
    assert refused.get_json()["details"] == {"code": "invalid_request", "field": "ends_at"}
    assert "UTC offset" in refused.get_json()["error"]
    assert api.post("/silences", data="x", headers={"Content-Type": "text/plain"}).status_code == 415
    assert Api(client, key=None).post("/silences", json={"match": "shop", "ends_at": iso(5)}).status_code == 401
    assert Api(client, key=None).get("/silences").status_code == 401
    assert db.count("silences") == 0


@with_env(FAILURE_THRESHOLD="1")
def test_a_silenced_alert_opens_quietly_and_is_notified_once_when_its_silence_ends(targets_yaml, app, api, db,
                                                                                     console):
    silence = api.post("/silences", json={"match": "tag:prod", "ends_at": iso(60), "reason": "deploy"}).get_json()
    alert = fail(api, "shop", "https://shop.example/")
    assert alert["status"] == "OPEN"
    assert logs(db, alert["id"]) == [("ERROR", "SUPPRESSED", f"silence {silence['id']}", silence["id"])]
    assert db.count("deliveries") == 0

    api.request("DELETE", f"/silences/{silence['id']}")
    ctx = app.extensions["outage"]
    # The timer's pass and these two calls race for the one row: it is queued once.
    release_ended(ctx.engine, ctx.service.channels)
    release_ended(ctx.engine, ctx.service.channels)
    wait_until(lambda: db.count("deliveries") == 1, 5, message="the released notice")
    assert ctx.dispatcher.wait_idle(5)
    assert [row[:2] for row in logs(db, alert["id"])] == [("ERROR", "SUPPRESSED"), ("ERROR", "SENT")]
    assert console.getvalue().count("[ALERT] ERROR - https://shop.example/") == 1
    assert db.rows("SELECT release_at FROM notification_logs WHERE status = 'SUPPRESSED'")[0]["release_at"] is None


@with_env(FAILURE_THRESHOLD="1")
def test_an_alert_resolved_or_acknowledged_during_its_silence_is_never_notified(targets_yaml, app, api, db, console):
    silence = api.post("/silences", json={"match": "shop", "ends_at": iso(60)}).get_json()
    resolved = fail(api, "shop", "https://shop.example/")
    api.send(event("https://shop.example/", ok=True, target="shop"))
    assert [row[:2] for row in logs(db, resolved["id"])] == [("ERROR", "SUPPRESSED"), ("RECOVERY", "SUPPRESSED")]
    acknowledged = fail(api, "shop", "https://shop.example/")
    assert api.patch(f"/alerts/{acknowledged['id']}", json={"status": "ACK"}).status_code == 200

    api.request("DELETE", f"/silences/{silence['id']}")
    ctx = app.extensions["outage"]
    wait_until(lambda: not db.rows("SELECT id FROM notification_logs WHERE release_at IS NOT NULL"), 5,
               message="the silence-end pass")
    assert release_ended(ctx.engine, ctx.service.channels) == 0
    assert db.count("deliveries") == 0 and console.getvalue() == ""


@with_env(FAILURE_THRESHOLD="1")
def test_a_maintenance_window_of_the_targets_file_suppresses_like_a_silence(targets_yaml, app, api, db, console):
    alert = fail(api, "blog", "https://blog.example/")
    assert logs(db, alert["id"]) == [("ERROR", "SUPPRESSED", "maintenance always", None)]
    other = fail(api, "shop", "https://shop.example/")  # not in the window
    assert app.extensions["outage"].dispatcher.wait_idle(5)
    assert logs(db, other["id"]) == [("ERROR", "SENT", None, None)]


@with_env(FAILURE_THRESHOLD="1")
def test_a_paused_target_is_not_pulled_its_events_open_no_alert_and_a_reload_keeps_it_paused(targets_yaml, api,
                                                                                             db):
    assert api.patch("/targets/shop", json={"paused": True}).get_json() == {"name": "shop", "paused": True}
    shown = {t["name"]: (t["paused"], t["state"]) for t in api.get("/targets").get_json()["targets"]}
    assert shown == {"shop": (True, "PAUSED"), "blog": (False, "UNKNOWN")}
    assert [t["name"] for t in api.get("/agent/targets").get_json()["targets"]] == ["blog"]
    assert fail(api, "shop", "https://shop.example/") is None
    assert db.count("alerts") == 0 and db.count("events") == 1

    targets_yaml.write_text(TARGETS.replace("tags: [prod]", "tags: [prod, eu]"), encoding="utf-8")
    assert api.post("/targets/reload").get_json()["changed"] == 1
    assert [t["name"] for t in api.get("/agent/targets").get_json()["targets"]] == ["blog"]
    assert fail(api, "shop", "https://shop.example/") is None

    assert api.patch("/targets/shop", json={"paused": False}).status_code == 200
    assert fail(api, "shop", "https://shop.example/")["status"] == "OPEN"
    assert [t["name"] for t in api.get("/agent/targets").get_json()["targets"]] == ["shop", "blog"]


def test_pausing_names_a_file_target_and_takes_only_paused(targets_yaml, api):
    refused = api.patch("/targets/shop", json={"paused": "yes"})
    assert refused.status_code == 400 and refused.get_json()["details"]["field"] == "paused"
    assert api.patch("/targets/shop", json={"paused": True, "x": 1}).status_code == 400
    assert api.patch("/targets/nope", json={"paused": True}).status_code == 404


@with_env(FAILURE_THRESHOLD="1")
def test_a_notice_whose_silence_ends_inside_another_waits_for_that_one_too(targets_yaml, app, api, db, console):
    first = api.post("/silences", json={"match": "shop", "ends_at": iso(60)}).get_json()
    second = api.post("/silences", json={"match": "tag:prod", "ends_at": iso(120)}).get_json()
    alert = fail(api, "shop", "https://shop.example/")
    assert logs(db, alert["id"]) == [("ERROR", "SUPPRESSED", f"silence {second['id']}", second["id"])]  # ends last

    api.request("DELETE", f"/silences/{second['id']}")
    wait_until(lambda: len(logs(db, alert["id"])) == 2, 5, message="the notice suppressed again")
    assert logs(db, alert["id"])[1] == ("ERROR", "SUPPRESSED", f"silence {first['id']}", first["id"])
    api.request("DELETE", f"/silences/{first['id']}")
    wait_until(lambda: "[ALERT] ERROR" in console.getvalue(), 5, message="the notice")
    assert app.extensions["outage"].dispatcher.wait_idle(5)
    assert [row[1] for row in logs(db, alert["id"])] == ["SUPPRESSED", "SUPPRESSED", "SENT"]


def test_a_paused_push_target_misses_no_deadline_and_its_deadline_counts_from_its_resumption(targets_yaml, api, db):
    targets_yaml.write_text(TARGETS.replace("maintenance:\n", "  - {name: nightly, kind: push, period: 1, grace: 0}\n"
                                                              "maintenance:\n"), encoding="utf-8")
    assert api.post("/targets/reload").get_json()["added"] == 1
    assert api.patch("/targets/nightly", json={"paused": True}).status_code == 200
    loaded = datetime.now(timezone.utc)
    beat = "SELECT beat_at FROM deadline_timer"
    wait_until(lambda: (db.rows(beat)[0]["beat_at"] or "") > precise_text(loaded + timedelta(seconds=2.5)), 10,
               message="timer passes past the deadline")
    assert db.count("alerts") == 0  # paused: its deadline is not watched

    resumed = datetime.now(timezone.utc)
    assert api.patch("/targets/nightly", json={"paused": False}).status_code == 200
    [missed] = wait_until(lambda: db.rows("SELECT checked_at FROM events WHERE target = 'nightly'"), 10,
                          message="the deadline after resuming")
    assert missed["checked_at"] >= check_time_text(resumed + timedelta(seconds=1))


@with_env(FAILURE_THRESHOLD="1")
def test_a_stored_window_that_never_comes_neither_fails_ingest_nor_silences(targets_yaml, app, api, db):
    """Loading refuses `0 0 30 2 *` now; a database loaded before may still hold one, as here."""
    db.rows("INSERT INTO maintenance_windows (position, spec) VALUES (1, ?) RETURNING position",
            ('{"match": "shop", "cron": "0 0 30 2 *", "duration": "1h", "timezone": "UTC"}',))
    alert = fail(api, "shop", "https://shop.example/")  # 201 with its alert, not a 500 storing nothing
    assert app.extensions["outage"].dispatcher.wait_idle(5)
    assert logs(db, alert["id"]) == [("ERROR", "SENT", None, None)]


@with_env(FAILURE_THRESHOLD="1")
def test_a_reload_that_changes_or_removes_a_window_releases_its_held_notices(targets_yaml, app, api, db):
    alert = fail(api, "blog", "https://blog.example/")
    assert logs(db, alert["id"]) == [("ERROR", "SUPPRESSED", "maintenance always", None)]
    # Replaced by another window still covering blog: released, then held again by the one that applies now.
    targets_yaml.write_text(TARGETS.replace("name: always", "name: longer").replace("1h}", "2h}"), encoding="utf-8")
    assert api.post("/targets/reload").status_code == 200
    wait_until(lambda: len(logs(db, alert["id"])) == 2, 10, message="the notice held again by the new window")
    assert logs(db, alert["id"])[1] == ("ERROR", "SUPPRESSED", "maintenance longer", None)
    # Removed: the notice goes out now, not at the removed window's planned end.
    targets_yaml.write_text(TARGETS.split("maintenance:")[0], encoding="utf-8")
    assert api.post("/targets/reload").status_code == 200
    wait_until(lambda: ("ERROR", "SENT", None, None) in logs(db, alert["id"]), 10, message="the ERROR sent")


@pytest.mark.skipif(not IS_POSTGRES, reason="row locks are PostgreSQL's; SQLite writers take turns")
@with_env(FAILURE_THRESHOLD="1")
def test_an_ack_committed_while_the_silence_ends_is_seen_and_nothing_is_sent(targets_yaml, app, api, db):
    made = api.post("/silences", json={"match": "shop", "ends_at": iso(60), "reason": "deploy"}).get_json()
    alert = fail(api, "shop", "https://shop.example/")
    engine = app.extensions["outage"].service.engine
    with engine.connect() as ack:
        ack.begin()  # an ACK in flight: the alert row is locked, its new status not yet committed
        ack.execute(text("UPDATE alerts SET status = 'ACK' WHERE id = :id"), {"id": alert["id"]})
        assert api.request("DELETE", f"/silences/{made['id']}").status_code == 200  # the app's timer releases at once

        def waiting_or_queued() -> bool:
            with engine.connect() as conn:
                return bool(conn.execute(text(
                    "SELECT (SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()) + (SELECT COUNT(*) FROM deliveries)")).scalar())
        wait_until(waiting_or_queued, 10, message="the silence-end pass waiting for the alert, or done")
        ack.commit()
    wait_until(lambda: db.rows("SELECT release_at FROM notification_logs WHERE alert_id = ?",
                               (alert["id"],))[0]["release_at"] is None, 10, message="the held notice handled")
    assert db.count("deliveries") == 0  # the alert was acknowledged: its ERROR is never sent
