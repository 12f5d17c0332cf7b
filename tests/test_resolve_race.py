"""A manual resolve racing a recovery: resolving by hand notifies nobody, whoever commits first (README)."""

from __future__ import annotations

import threading

import pytest

from backend import store
from backend.rules import AlertStatus
from tests.backend_fixtures import api, app, backend_env, client, console, db, event, settings, with_env  # noqa: F401
from tests.support.databases import IS_POSTGRES

URL = "https://t.example/"


def open_then_resolve_by_hand(api) -> int:
    alert_id = api.send(event(ok=False))["alert"]["id"]
    assert api.patch(f"/alerts/{alert_id}", json={"status": "RESOLVED"}).get_json()["status"] == "RESOLVED"
    return alert_id


def assert_no_recovery_queued(db, alert_id: int) -> None:
    assert [tuple(r) for r in db.rows("SELECT notice_type FROM deliveries ORDER BY id")] == [("ERROR",)]
    [alert] = db.rows("SELECT status, resolved_event_id FROM alerts WHERE id = ?", (alert_id,))
    assert tuple(alert) == ("RESOLVED", None)  # resolved by hand, not by the check


@with_env(FAILURE_THRESHOLD="1")
def test_a_recovery_that_read_the_alert_before_a_manual_resolve_queues_no_recovery(app, api, db, monkeypatch):
    """The batch saw the alert active (read before the PATCH committed); its resolve then changes no row."""
    alert_id = open_then_resolve_by_hand(api)
    monkeypatch.setattr(store, "active_alert_ids", lambda conn, urls: {URL: (alert_id, "ERROR")})  # the stale read
    answer = api.send(event(ok=True, timestamp="2025-01-08T15:31:45Z"))
    assert answer["alert"] is None
    assert_no_recovery_queued(db, alert_id)


@pytest.mark.skipif(not IS_POSTGRES, reason="SQLite writers take turns; only PostgreSQL lets a PATCH in between")
@with_env(FAILURE_THRESHOLD="1")
def test_a_patch_committed_between_the_read_and_the_resolve_of_a_recovery_queues_no_recovery(app, api, db,
                                                                                              monkeypatch):
    alert_id = api.send(event(ok=False))["alert"]["id"]
    service = app.extensions["outage"].service
    read_active = store.active_alert_ids
    patched: list = []

    def read_then_let_a_patch_in(conn, urls):
        active = read_active(conn, urls)
        worker = threading.Thread(target=lambda: patched.append(service.change_alert_status(
            alert_id, AlertStatus.RESOLVED, "api")))
        worker.start()
        worker.join(timeout=20)
        return active

    monkeypatch.setattr(store, "active_alert_ids", read_then_let_a_patch_in)
    answer = api.send(event(ok=True, timestamp="2025-01-08T15:31:45Z"))
    assert patched and patched[0]["status"] == "RESOLVED"  # the PATCH won, in its own transaction
    assert answer["alert"] is None
    assert_no_recovery_queued(db, alert_id)
