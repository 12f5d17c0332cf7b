"""POST /events requests that arrive together are stored as one batch: same answers, same alerts, one transaction."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.backend_fixtures import (API_KEY, api, app, backend_env, client, console, db, event,  # noqa: F401
                                    settings)
from tests.support.group_commit import queue_in_turn

pytestmark = pytest.mark.timeout(60)


def at(second: int) -> str:
    return f"2025-01-08T15:30:{second:02d}Z"


def _together(app, bodies: list, groups_run: list[int] | None = None) -> list:
    """POST each body on its own thread while a group is running (as the test holds it), in turn; then let go.

    `groups_run`: the sizes of the groups run, one transaction each (default: the whole group, once).
    """
    ctx = app.extensions["outage"]
    writes = ctx.service.writes
    if not writes.grouped:
        pytest.skip("PostgreSQL writers run side by side: no groups there")
    groups = []
    run_group = writes.run_group

    def counted(conn, payloads):
        groups.append(len(payloads))
        return run_group(conn, payloads)

    writes.run_group = counted

    def post(body):
        return app.test_client().post("/events", json=body, headers={"X-API-Key": API_KEY})

    assert writes._leading.acquire(timeout=10)  # as a group already running would
    held = True
    try:
        with ThreadPoolExecutor(len(bodies)) as pool:
            futures = queue_in_turn(writes, pool, [partial(post, body) for body in bodies])  # validated, queued
            writes._leading.release()
            held = False
            answers = [f.result(timeout=20) for f in futures]
    finally:
        if held:
            writes._leading.release()
    assert groups == (groups_run or [len(bodies)]), "one transaction for the whole group"
    return answers


def test_requests_stored_together_answer_as_if_sent_one_after_another(app, db):
    first_uid = str(uuid.uuid4())
    bodies = [
        event(ok=False, timestamp=at(1), event_uid=first_uid),
        event(ok=False, timestamp=at(2)),
        [event(ok=False, timestamp=at(3)), event(ok=False, timestamp=at(1), event_uid=first_uid)],  # a resend
        event(target_url="https://other.example/", ok=True, timestamp=at(2)),
    ]
    answers = _together(app, bodies)
    assert [a.status_code for a in answers] == [201, 201, 201, 201]
    one, two, three, other = (a.get_json() for a in answers)
    assert one["alert"] is None and two["alert"] is None and other["alert"] is None
    opened, resend = three["events"]
    assert opened["alert"]["status"] == "OPEN" and not opened["duplicate"]  # the third failure in a row
    assert resend == {"event_id": one["event_id"], "alert": None, "duplicate": True}
    assert db.count("events") == 4  # the resent uid stored once
    assert [tuple(r) for r in db.rows("SELECT event_id, status FROM alerts")] == [(opened["event_id"], "OPEN")]


def test_check_time_order_holds_across_the_requests_of_a_group(app, db):
    # Sent newest first by three requests: in check-time order fail, fail, fail, none of them late.
    answers = _together(app, [event(ok=False, timestamp=at(s)) for s in (3, 2, 1)])
    assert [a.status_code for a in answers] == [201, 201, 201]
    assert [r["is_late"] for r in db.rows("SELECT is_late FROM events")] == [0, 0, 0]
    [alert] = db.rows("SELECT event_id FROM alerts")
    assert alert["event_id"] == answers[0].get_json()["event_id"]  # the check at :03 completes the outage


def test_a_group_of_resends_answers_200_to_each(app, db, api):
    bodies = [event(ok=True, timestamp=at(s), event_uid=str(uuid.uuid4())) for s in (1, 2)]
    for body in bodies:
        api.send(body)
    answers = _together(app, bodies)
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.get_json()["duplicate"] for a in answers)
    assert db.count("events") == 2


def test_a_group_rolled_back_and_run_again_alone_logs_and_counts_each_alert_once(app, db, settings, caplog):
    # A trigger makes the database refuse to save one target's state: the group's transaction fails
    # after the other request's alert was opened in it, and each request runs again alone.
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL writers run side by side: no groups there")
    poison = "https://poison.example/"
    with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as conn:
        conn.execute("CREATE TRIGGER refuse_poison BEFORE UPDATE ON targets WHEN NEW.name = ? "
                     "BEGIN SELECT RAISE(ABORT, 'this target is refused'); END".replace("?", f"'{poison}'"))
    client = app.test_client()
    for second in (1, 2):
        assert client.post("/events", json=event(ok=False, timestamp=at(second)),
                           headers={"X-API-Key": API_KEY}).status_code == 201
    before = alerts_opened(client)
    with caplog.at_level(logging.INFO, logger="backend"):
        opening, refused = _together(app, [event(ok=False, timestamp=at(3)),
                                           event(target_url=poison, ok=False, timestamp=at(3))], [2, 1, 1])
    assert opening.status_code == 201 and opening.get_json()["alert"]["status"] == "OPEN"
    assert refused.status_code == 500
    assert db.count("alerts") == 1 and db.count("events") == 3  # the refused request stored nothing
    assert alerts_opened(client) == before + 1
    opened = [r.getMessage() for r in caplog.records if " opened (ERROR) for " in r.getMessage()]
    assert opened == [f"alert 1 opened (ERROR) for {event()['target_url']} (check at 2025-01-08 15:30:03)"]


def alerts_opened(client) -> float:
    families = text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
    return next(s.value for f in families for s in f.samples
                if s.name == "outage_alerts_opened_total" and s.labels == {"type": "ERROR"})
