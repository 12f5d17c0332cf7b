"""event_uid: a retried send stores nothing twice and answers 200 with the stored event."""

import uuid

from tests.backend_fixtures import api, app, backend_env, client, console, db, event, settings, with_env  # noqa: F401


def uid() -> str:
    return str(uuid.uuid4())


def test_a_retried_event_is_stored_once_and_answered_200(api, db):
    body = event(event_uid=uid())
    first = api.post("/events", json=body)
    again = api.post("/events", json=body)
    assert first.status_code == 201 and first.get_json()["duplicate"] is False
    assert again.status_code == 200
    assert again.get_json() == {"event_id": first.get_json()["event_id"], "alert": None, "duplicate": True}
    assert db.count("events") == 1


def test_a_retried_batch_changes_nothing(api, db):
    batch = [event(ok=False, event_uid=uid()) for _ in range(3)]
    first = api.post("/events", json=batch)
    assert first.status_code == 201 and db.count("alerts") == 1
    again = api.post("/events", json=batch)
    assert again.status_code == 200
    assert [e["event_id"] for e in again.get_json()["events"]] == [e["event_id"] for e in first.get_json()["events"]]
    assert all(e["duplicate"] for e in again.get_json()["events"])
    assert (db.count("events"), db.count("alerts"), db.count("deliveries")) == (3, 1, 1)


def test_a_batch_mixing_new_and_stored_events_stores_only_the_new_ones(api, db):
    old = event(event_uid=uid())
    api.send(old)
    answer = api.post("/events", json=[old, event(event_uid=uid())])
    assert answer.status_code == 201
    assert [e["duplicate"] for e in answer.get_json()["events"]] == [True, False]
    assert db.count("events") == 2


def test_the_same_uid_twice_in_one_batch_is_stored_once(api, db):
    same = uid()
    answer = api.post("/events", json=[event(event_uid=same), event(event_uid=same)])
    first, second = answer.get_json()["events"]
    assert answer.status_code == 201 and second == {**first, "duplicate": True}
    assert db.count("events") == 1


def test_uid_case_does_not_make_a_second_copy(api, db):
    value = uid()
    api.send(event(event_uid=value))
    assert api.post("/events", json=event(event_uid=value.upper())).status_code == 200
    assert db.rows("SELECT event_uid FROM events")[0]["event_uid"] == value


def test_events_without_a_uid_are_each_stored(api, db):
    api.send(event())
    api.send(event())
    assert db.count("events") == 2


def test_a_malformed_uid_is_refused_and_nothing_is_stored(api, db):
    answer = api.post("/events", json=event(event_uid="not-a-uuid"))
    assert answer.status_code == 400
    assert answer.get_json()["error"].startswith("event_uid must be a UUID")
    assert db.count("events") == 0
