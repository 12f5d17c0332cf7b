"""GET /targets/<name>/stats through the app factory: rollups plus unrolled events, windows, names (SPEC §8)."""

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from backend.histogram import MAX_RELATIVE_ERROR
from backend.stats import target_stats
from tests.backend_fixtures import (api, app, backend_env, client, console, db, event, settings,  # noqa: F401
                                    targets_yaml)

NAME = "shop: ü/?#%20 & \"quoted\" //x"  # names may hold any character, "//" included
TARGETS = (f"targets:\n  - name: '{NAME}'\n    url: https://shop.example/health\n"
           "  - name: quiet\n    url: https://quiet.example/\n")



def ago(minutes: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def stats_path(name: str, window: str | None = None) -> str:
    return f"/targets/{quote(name, safe='')}/stats" + (f"?window={window}" if window is not None else "")


def test_stats_count_rolled_and_unrolled_checks_alike(targets_yaml, app, api):
    times = [40 + (i * 53) % 400 for i in range(100)]
    checks = [event("https://shop.example/health", ok=i % 20 != 0, target=NAME, timestamp=ago(600 - i * 5),
                    response_time_ms=times[i]) for i in range(100)]
    api.send(*checks[:60])
    app.extensions["outage"].roller.run_once()
    api.send(*checks[60:])  # stored, not rolled up yet: counted from the events
    body = api.get(stats_path(NAME)).get_json()
    assert (body["target"], body["window"], body["checks"], body["failures"]) == (NAME, "24h", 100, 5)
    assert body["uptime_percent"] == 95.0
    assert body["response_time_ms"]["mean"] == round(sum(times) / 100, 1)
    exact_p95 = sorted(times)[94]
    assert abs(body["response_time_ms"]["p95"] - exact_p95) <= MAX_RELATIVE_ERROR * exact_p95
    app.extensions["outage"].roller.run_once()
    assert api.get(stats_path(NAME)).get_json() == {**body, "to": api.get(stats_path(NAME)).get_json()["to"]}


def test_windows_cover_their_span_from_the_top_of_the_hour(app, api):
    url = "https://a.example/"
    api.send(event(url, timestamp=ago(60 * 20)), event(url, ok=False, timestamp=ago(60 * 24 * 3)),
             event(url, timestamp=ago(60 * 24 * 20)))
    app.extensions["outage"].roller.run_once()
    checks = {w: api.get(stats_path(url, w)).get_json()["checks"] for w in ("24h", "7d", "30d")}
    assert checks == {"24h": 1, "7d": 2, "30d": 3}
    body = api.get(stats_path(url, "7d")).get_json()
    assert (body["failures"], body["uptime_percent"]) == (1, 50.0)
    start = datetime.fromisoformat(body["from"]).replace(tzinfo=timezone.utc)
    end = datetime.fromisoformat(body["to"]).replace(tzinfo=timezone.utc)
    assert start.minute == start.second == 0 and timedelta(days=7) <= end - start < timedelta(days=7, hours=1)


def test_uptime_is_null_and_times_are_null_for_a_file_target_without_checks(targets_yaml, api):
    body = api.get(stats_path("quiet")).get_json()
    assert (body["checks"], body["failures"], body["uptime_percent"]) == (0, 0, None)
    assert body["response_time_ms"] == {"mean": None, "p95": None}


def test_uptime_shows_a_failure_even_among_many_successes(app):
    """Rounded down: 100 means no failure, never 99.999 shown as 100."""
    from backend.stats import _uptime_percent
    assert _uptime_percent(100_000, 1) == 99.99 and _uptime_percent(10, 0) == 100.0


def test_an_unknown_name_is_a_404_in_one_sentence(api):
    response = api.get(stats_path("nobody"))
    assert response.status_code == 404
    assert response.get_json() == {"error": "Target 'nobody' is not in the targets file and has no checks.",
                                   "details": {}}


@pytest.mark.parametrize("window", ["1y", "", "24H", "30"])
def test_a_window_other_than_24h_7d_30d_is_a_400_naming_it(api, window):
    api.send(event())
    response = api.get(stats_path("https://t.example/", window))
    assert response.status_code == 400
    assert response.get_json() == {"error": "window must be one of 24h, 7d, 30d.",
                                   "details": {"code": "invalid_request", "field": "window"}}


def test_stats_need_the_api_key(api):
    api.key = None
    assert api.get(stats_path("https://t.example/")).status_code == 401


def test_a_url_target_just_stored_counts_before_any_roll(api):
    api.send(event("https://new.example/a//b?c=1", timestamp=ago(1)))
    body = api.get(stats_path("https://new.example/a//b?c=1", "30d")).get_json()
    assert (body["target"], body["checks"], body["response_time_ms"]["mean"]) == ("https://new.example/a//b?c=1", 1,
                                                                                   120.0)
    assert abs(body["response_time_ms"]["p95"] - 120) <= MAX_RELATIVE_ERROR * 120


def test_a_read_racing_a_roll_counts_each_check_once(app, api, monkeypatch):
    """The roller commits between the route's rollup read and its event read: nothing counts twice.

    On SQLite the read transaction holds one snapshot anyway; on PostgreSQL (a snapshot per
    statement) this fails if the events are read before the rollups and their watermark.
    """
    from backend import store
    url = "https://race.example/"
    api.send(*[event(url, timestamp=ago(10 - i)) for i in range(5)])
    ctx = app.extensions["outage"]
    real = store.events_of_target_after

    def roll_first(conn, target, after_id):
        ctx.roller.run_once()  # another connection commits the roll here
        return real(conn, target, after_id)

    monkeypatch.setattr(store, "events_of_target_after", roll_first)
    assert target_stats(ctx.engine, url, "24h")["checks"] == 5


def test_ingest_and_the_stats_take_one_verdict_from_the_resolved_target(targets_yaml, app, api):
    """SPEC §9: the agent's verdict for a file target (matched by URL too), §5's rule for a name not in the file."""
    # No `target`: the event belongs to the file target with this URL, whose agent judged it a success.
    answer = api.send(*[event("https://shop.example/health", ok=True, status=503, timestamp=ago(10 - i))
                        for i in range(3)])
    gone = api.send(event("https://gone.example/", ok=True, status=503, target="gone", timestamp=ago(5)))
    opened = [item["alert"] for item in answer["events"] + [gone] if item.get("alert")]
    for rolled in (False, True):
        if rolled:
            app.extensions["outage"].roller.run_once()
        assert (opened, api.get(stats_path(NAME)).get_json()["failures"]) == ([], 0)
        assert api.get(stats_path("gone")).get_json()["failures"] == 1  # a 503 fails by §5's rule


@pytest.mark.parametrize("name", ["shop\x00", "x" * 3000], ids=["nul", "too-long"])
def test_a_name_no_target_can_have_is_a_400_in_one_sentence(api, name):
    """A NUL (which PostgreSQL refuses in text) or an over-long name never reaches the database."""
    response = api.get(stats_path(name))
    assert response.status_code == 400
    assert response.get_json() == {"error": "The target name must be at most 2064 characters, with no NUL.",
                                   "details": {"code": "invalid_request", "field": "name"}}
