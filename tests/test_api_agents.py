"""GET /agents: who was heard from and when, from their events and their pulls of GET /agent/targets (SPEC §8)."""

import re

from sqlalchemy import text

from tests.backend_fixtures import api, app, backend_env, client, console, db, event, settings  # noqa: F401

TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")


def backdate_events(app, name: str | None = None) -> None:
    """Set last_event_at far back (one agent, or all), so that a later write shows."""
    with app.extensions["outage"].engine.begin() as conn:
        conn.execute(text("UPDATE agents SET last_event_at = '2026-01-01 00:00:00'"
                          + (" WHERE name = :name" if name else "")), {"name": name} if name else {})


class FakeClock:
    """The throttle's monotonic clock, moved by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_agents_whose_events_arrive_are_listed_newest_first_and_paged(app, api):
    api.send(event(agent="alpha"), event("https://b.example/", agent="beta"), event("https://c.example/"))
    backdate_events(app, "alpha")
    body = api.get("/agents").get_json()
    assert [a["name"] for a in body["agents"]] == ["beta", "alpha"]  # an event with no agent lists nobody
    beta, alpha = body["agents"]
    assert TIME.match(beta["last_seen_at"]) and beta["last_seen_at"] == beta["last_event_at"]
    assert beta["last_pull_at"] is None
    assert alpha == {"name": "alpha", "last_seen_at": "2026-01-01 00:00:00",
                     "last_event_at": "2026-01-01 00:00:00", "last_pull_at": None}
    assert [a["name"] for a in api.get("/agents?limit=1&offset=1").get_json()["agents"]] == ["alpha"]
    assert api.get("/agents?limit=0").status_code == 400
    assert api.client.get("/agents").status_code == 401


def test_an_agents_events_write_its_time_at_most_once_in_five_seconds_per_process(app, api, db):
    clock = app.extensions["outage"].service.agent_seen.clock = FakeClock()
    api.send(event(agent="alpha"))
    backdate_events(app)
    clock.now += 4.9
    api.send(event(agent="alpha"))
    assert db.rows("SELECT last_event_at FROM agents") == [("2026-01-01 00:00:00",)]
    clock.now += 0.1
    api.send(event(agent="alpha"))
    [(written,)] = db.rows("SELECT last_event_at FROM agents")
    assert TIME.match(written) and written > "2026-01-01 00:00:00"


def test_a_pull_of_the_target_list_with_a_name_records_last_pull_at(api, db):
    as_sent = "büro-7".encode().decode("latin-1")  # the agent sends UTF-8 bytes; the test client wants str
    assert api.get("/agent/targets", headers={"X-Agent-Name": as_sent}).status_code == 200
    assert api.get("/agent/targets").status_code == 200  # an agent from before X-Agent-Name: served, not listed
    [agent] = api.get("/agents").get_json()["agents"]
    assert agent["name"] == "büro-7" and agent["last_event_at"] is None
    assert TIME.match(agent["last_pull_at"]) and agent["last_seen_at"] == agent["last_pull_at"]


def test_an_invalid_agent_name_header_is_refused_with_400_naming_it(api, db):
    for bad in ["", "x" * 256, "\xff\xfe"]:  # the last is not UTF-8
        response = api.get("/agent/targets", headers={"X-Agent-Name": bad})
        assert response.status_code == 400
        body = response.get_json()
        assert "X-Agent-Name" in body["error"] and body["details"]["field"] == "X-Agent-Name"
    assert db.count("agents") == 0
