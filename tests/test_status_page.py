"""The public status page (SPEC §12): off unless STATUS_PAGE=on, no login, only `public: true` targets, no internals."""

import re
from datetime import date, datetime, timedelta, timezone

import pytest

from backend.config import load_settings
from backend.status_page import daily_bar, public_state
from common.config import ConfigError
from tests.backend_fixtures import (API_KEY, api, app, backend_env, client, console, db, event, settings,  # noqa: F401
                                    targets_yaml, with_env)

PROBE_KEY = "probe-KEY-0123456789abcdef"
TARGETS = """\
targets:
  - name: shop
    url: https://shop.example/health?token=url-TOKEN-42
    public: true
    tags: [prod]
  - name: blog
    url: https://blog.example/
    public: true
  - name: admin
    url: https://admin.internal.example/
    headers: {Authorization: "Bearer ${PROBE_KEY}"}
  - name: nightly
    kind: push
    period: 86400
    grace: 3600
    public: true
"""
on = with_env(STATUS_PAGE="on", PROBE_KEY=PROBE_KEY)


def ago(hours: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(hours=hours)).isoformat().replace("+00:00", "Z")


def card(page: str, name: str) -> str:
    found = re.search(rf'<li class="target" data-target="{re.escape(name)}">(.*?)</li>', page, re.S)
    return found.group(1) if found else ""


@pytest.mark.parametrize("backend_env", [{}, {"STATUS_PAGE": "off"}], indirect=True, ids=["unset", "off"])
def test_the_status_page_is_404_unless_it_is_on(client):
    assert client.get("/status").status_code == 404


def test_a_bad_status_page_value_is_one_sentence_naming_the_key():
    with pytest.raises(ConfigError) as refused:
        load_settings({"API_KEY": API_KEY, "STATUS_PAGE": "public"})
    assert "STATUS_PAGE" in str(refused.value) and "\n" not in str(refused.value)
    assert load_settings({"API_KEY": API_KEY, "STATUS_PAGE": "on"}).status_page is True


@on
def test_it_shows_only_public_targets_with_state_uptime_and_a_daily_bar_without_login_or_internals(
        targets_yaml, app, client, api, db):
    api.send(*[event("https://shop.example/health?token=url-TOKEN-42", ok=i != 0, target="shop",
                     timestamp=ago(30 - i)) for i in range(4)])
    api.send(*[event("https://blog.example/", ok=False, target="blog", error_message="HTTP 503 secret-stack-trace",
                     timestamp=ago(3 - i * 0.5)) for i in range(3)])  # three failures: an ERROR alert opens
    api.send(event("https://admin.internal.example/", target="admin", timestamp=ago(1)))
    app.extensions["outage"].roller.run_once()
    answer = client.get("/status")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "public, max-age=30"
    page = answer.text
    assert re.findall(r'data-target="([^"]+)"', page) == ["shop", "blog", "nightly"]  # file order, public only
    assert "state up" in card(page, "shop") and "75.00 %" in card(page, "shop")
    assert "state down" in card(page, "blog") and "0.00 %" in card(page, "blog")
    assert "state unknown" in card(page, "nightly")
    assert card(page, "shop").count("<span class=") >= 30 and 'class="part"' not in card(page, "nightly")
    assert "1 of 3 down" in page
    for internal in ("admin", "shop.example", "url-TOKEN-42", "blog.example", PROBE_KEY, "secret-stack-trace",
                     "HTTP 503", API_KEY, "/ping/", db.rows("SELECT ping_token FROM file_targets "
                                                            "WHERE name = 'nightly'")[0]["ping_token"]):
        assert internal not in page, internal


@on
def test_a_paused_or_silenced_public_target_is_in_maintenance(targets_yaml, app, client, api):
    api.send(event("https://shop.example/health?token=url-TOKEN-42", target="shop", timestamp=ago(1)),
             event("https://blog.example/", target="blog", timestamp=ago(1)))
    assert api.patch("/targets/blog", json={"paused": True}).status_code == 200
    in_an_hour = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert api.post("/silences", json={"match": "tag:prod", "ends_at": in_an_hour}).status_code == 201
    page = client.get("/status").text
    assert "state maintenance" in card(page, "shop") and "state maintenance" in card(page, "blog")
    assert "in maintenance" in page


@pytest.mark.parametrize("alert_type, maintenance, checked, state", [
    ("ERROR", True, True, "down"), ("WARNING", False, True, "up"), (None, True, False, "maintenance"),
    (None, False, True, "up"), (None, False, False, "unknown")])
def test_the_public_state_word(alert_type, maintenance, checked, state):
    alert = {"alert_type": alert_type} if alert_type else None
    assert public_state(alert, maintenance, checked) == state


def test_the_daily_bar_has_one_entry_per_day_none_without_checks():
    bar = daily_bar({"2026-11-02": (200, 1), "2026-11-04": (10, 10)}, date(2026, 11, 1), days=4)
    assert bar == [{"day": "2026-11-01", "percent": None}, {"day": "2026-11-02", "percent": 99.5},
                   {"day": "2026-11-03", "percent": None}, {"day": "2026-11-04", "percent": 0.0}]
