"""The dashboard's forms over the API's own functions (SPEC §11, §10, §12): pause, silences, channel tests."""

import html
import re
from datetime import datetime, timedelta, timezone

from tests.backend_fixtures import (api, app, backend_env, client, console, db, event, settings,  # noqa: F401
                                    targets_yaml, with_env)
from tests.support.procs import free_port
from tests.test_dashboard_pages import ON, csrf, log_in

HOOK_SECRET = "hook-SECRET-0123456789abcdef"

# The pager's port is free: nothing listens there, so its channel test fails.
TARGETS = f"""\
channels:
  pager: {{type: webhook, url: "http://127.0.0.1:{free_port()}/hook", secret: "${{HOOK_SECRET}}"}}
targets:
  - name: shop
    url: https://shop.example/health
  - name: blog
    url: https://blog.example/
"""
on = with_env(HOOK_SECRET=HOOK_SECRET, **ON)


def row_of(page: str, attribute: str, key: str) -> str:
    found = re.search(rf'<tr {attribute}="{re.escape(key)}">(.*?)</tr>', page, re.S)
    return found.group(1) if found else ""


@on
def test_a_paused_target_is_paused_on_every_page_and_resumes_from_its_page(targets_yaml, client, api, db):
    api.send(event("https://shop.example/health", target="shop"), event("https://blog.example/", target="blog"))
    assert api.patch("/targets/shop", json={"paused": True}).status_code == 200
    log_in(client)
    overview = client.get("/ui/").text
    assert "state PAUSED" in row_of(overview, "data-target", "shop") and "state UP" in row_of(overview, "data-target",
                                                                                              "blog")
    assert "1 paused" in overview
    page = client.get("/ui/targets/shop").text
    assert "state PAUSED" in page and ">Resume</button>" in page
    token = csrf(client, "/ui/targets/shop")
    assert client.post("/ui/targets/shop/paused", data={"paused": "false"}).status_code == 400  # no CSRF token
    assert db.count("paused_targets") == 1
    resumed = client.post("/ui/targets/shop/paused", data={"paused": "false", "csrf_token": token})
    assert resumed.headers["Location"] == "/ui/targets/shop" and db.count("paused_targets") == 0
    assert api.get("/targets").get_json()["targets"][0]["paused"] is False
    page = client.get("/ui/targets/shop").text
    assert "state UP" in page and ">Pause</button>" in page and "shop is checked again." in page
    client.post("/ui/targets/shop/paused", data={"paused": "true", "csrf_token": token})
    assert [row["name"] for row in db.rows("SELECT name FROM paused_targets")] == ["shop"]


@on
def test_silences_are_added_listed_and_ended_from_the_page(targets_yaml, client, db):
    log_in(client)
    token = csrf(client, "/ui/silences")
    assert client.post("/ui/silences", data={"match": "shop", "ends_in": "1h"}).status_code == 400  # no CSRF token
    assert db.count("silences") == 0
    added = client.post("/ui/silences", data={"match": "shop", "ends_in": "2h", "reason": "db upgrade",
                                              "csrf_token": token})
    assert added.headers["Location"] == "/ui/silences"
    row = db.rows("SELECT id, match, starts_at, ends_at, reason FROM silences")[0]
    length = datetime.fromisoformat(row["ends_at"]) - datetime.fromisoformat(row["starts_at"])
    assert (row["match"], row["reason"]) == ("shop", "db upgrade") and abs(length - timedelta(hours=2)) < timedelta(
        seconds=5)
    later = (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0)
    client.post("/ui/silences", data={"match": "tag:prod", "starts_at": later.isoformat(),
                                      "ends_at": (later + timedelta(hours=1)).astimezone(
                                          timezone(timedelta(hours=9))).isoformat(), "csrf_token": token})
    page = client.get("/ui/silences").text
    assert "silence active" in row_of(page, "data-silence", str(row["id"]))
    assert "silence upcoming" in page and "tag:prod" in page
    ended = client.post(f"/ui/silences/{row['id']}/end", data={"csrf_token": token})
    assert ended.headers["Location"] == "/ui/silences"
    assert db.rows("SELECT ended_early_at FROM silences WHERE id = ?", (row["id"],))[0]["ended_early_at"]
    page = client.get("/ui/silences").text
    assert f"Silence {row['id']} ended." in page
    assert "silence ended" in page.split("Recently ended")[1]  # listed under the ended ones now


@on
def test_a_refused_silence_shows_the_apis_own_sentence_and_stores_nothing(targets_yaml, client, db):
    log_in(client)
    token = csrf(client, "/ui/silences")
    bad_time = client.post("/ui/silences", data={"match": "shop", "ends_at": "tomorrow", "csrf_token": token},
                           follow_redirects=True)
    assert "ends_at must be an ISO 8601 date-time with a UTC offset" in bad_time.text
    assert 'value="tomorrow"' in bad_time.text  # the form keeps what was typed
    no_match = client.post("/ui/silences", data={"match": "", "ends_in": "1h", "csrf_token": token},
                           follow_redirects=True)
    assert "match must be a target name" in no_match.text
    no_end = client.post("/ui/silences", data={"match": "shop", "ends_in": "1y", "csrf_token": token},
                         follow_redirects=True)
    assert "ends_at is required" in no_end.text
    unknown = client.post("/ui/silences/999/end", data={"csrf_token": token}, follow_redirects=True)
    assert "Silence 999 does not exist." in unknown.text
    assert db.count("silences") == 0


@on
def test_the_channels_page_redacts_secrets_and_a_test_says_sent_or_failed_and_why(targets_yaml, client, db, console):
    log_in(client)
    page = client.get("/ui/channels").text
    assert 'data-channel="console"' in page and 'data-channel="pager"' in page
    assert "&lt;redacted&gt;" in row_of(page, "data-channel", "pager") and HOOK_SECRET not in page
    token = csrf(client, "/ui/channels")
    assert client.post("/ui/channels/console/test", data={}).status_code == 400  # no CSRF token
    assert db.count("notification_logs") == 0
    sent = client.post("/ui/channels/console/test", data={"csrf_token": token}, follow_redirects=True)
    assert "Test notice via console: SENT." in sent.text and "test://CONSOLE" in console.getvalue()
    failed = client.post("/ui/channels/pager/test", data={"csrf_token": token}, follow_redirects=True)
    assert "Test notice via pager: FAILED (" in failed.text and HOOK_SECRET not in failed.text
    rows = db.rows("SELECT channel, status, notice_type FROM notification_logs ORDER BY id")
    assert [(r["channel"], r["status"], r["notice_type"]) for r in rows] == [("CONSOLE", "SENT", "TEST"),
                                                                             ("pager", "FAILED", "TEST")]
    unknown = client.post("/ui/channels/nobody/test", data={"csrf_token": token}, follow_redirects=True)
    assert "No channel is named 'nobody'; configured: console, pager." in html.unescape(unknown.text)
