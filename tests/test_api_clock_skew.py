"""Timestamps ahead of the backend's clock, or without a time zone, are refused (issue 7, SPEC §4)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from backend.config import ConfigError, load_settings
from tests.backend_fixtures import (API_KEY, api, app, backend_env, client, console, db, event,  # noqa: F401
                                    settings, with_env)


def ahead(seconds: float) -> str:
    """A timestamp `seconds` after the clock of this machine (the backend's clock), in the agent's form."""
    moment = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_max_clock_skew_defaults_to_300_seconds():
    assert load_settings({"API_KEY": API_KEY}).max_clock_skew_seconds == 300


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "-5", "0"])
def test_an_invalid_max_clock_skew_names_the_key(value):
    with pytest.raises(ConfigError) as caught:
        load_settings({"API_KEY": API_KEY, "MAX_CLOCK_SKEW_SECONDS": value})
    assert caught.value.key == "MAX_CLOCK_SKEW_SECONDS"


def test_an_event_an_hour_ahead_is_refused_with_clock_skew_and_nothing_stored(api, db):
    response = api.post("/events", json=event(ok=True, timestamp=ahead(3600)))
    assert response.status_code == 400
    body = response.get_json()
    assert body["details"]["code"] == "clock_skew"
    assert body["details"]["field"] == "timestamp"
    assert body["error"].startswith("timestamp is 3600 seconds ahead of the backend's clock")
    assert "MAX_CLOCK_SKEW_SECONDS (300)" in body["error"]  # the limit it broke
    assert (db.count("events"), db.count("targets"), db.count("alerts")) == (0, 0, 0)


def test_a_target_still_opens_and_resolves_alerts_after_a_refused_future_event(api, db):
    """Before the fix, the future success was stored and every real check after it counted as late."""
    api.post("/events", json=event(ok=True, timestamp=ahead(3 * 3600)))
    answers = [api.send(event(ok=False, timestamp=ahead(0))) for _ in range(3)]
    assert answers[2]["alert"] is not None and answers[2]["alert"]["status"] == "OPEN"
    answer = api.send(event(ok=True, timestamp=ahead(0)))
    assert answer["alert"]["status"] == "RESOLVED"
    assert [r["is_late"] for r in db.rows("SELECT is_late FROM events ORDER BY id")] == [0, 0, 0, 0]


def test_a_batch_names_the_event_that_is_ahead_and_stores_nothing(api, db):
    response = api.post("/events", json=[event(timestamp=ahead(0))] * 3 + [event(timestamp=ahead(7200))])
    assert response.status_code == 400
    body = response.get_json()
    assert body["details"]["code"] == "clock_skew"
    assert (body["details"]["index"], body["details"]["field"]) == (3, "events[3].timestamp")
    assert body["error"].startswith("events[3].timestamp is 7200 seconds ahead")
    assert db.count("events") == 0


def test_a_clock_a_little_ahead_is_accepted(api, db):
    api.send(event(timestamp=ahead(60)))
    assert db.count("events") == 1


@with_env(MAX_CLOCK_SKEW_SECONDS="5")
def test_the_limit_follows_max_clock_skew_seconds(api, db):
    response = api.post("/events", json=event(timestamp=ahead(60)))
    assert response.status_code == 400
    assert response.get_json()["details"]["code"] == "clock_skew"
    assert "MAX_CLOCK_SKEW_SECONDS (5)" in response.get_json()["error"]


@pytest.mark.parametrize("timestamp", ["2025-01-08T15:30:45", "2025-01-08T15:30:45.123", "2025-01-08 15:30:45"])
def test_a_timestamp_without_a_time_zone_is_an_invalid_event(api, db, timestamp):
    response = api.post("/events", json=event(timestamp=timestamp))
    assert response.status_code == 400
    body = response.get_json()
    assert (body["details"]["code"], body["details"]["field"]) == ("invalid_event", "timestamp")
    assert body["error"].startswith("timestamp must include a time zone")
    assert db.count("events") == 0
