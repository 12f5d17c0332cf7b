"""Reminders and escalations queued by the timer pass (SPEC §11), in one app, the pass called at chosen times."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone

from backend.alert_timers import queue_due_timers
from backend.store_alert_timers import ESCALATED
from tests.support.procs import wait_until
from tests.backend_fixtures import (api, app, backend_env, client, console, db, event, settings,  # noqa: F401
                                    targets_yaml, with_env)

TARGETS = """
targets:
  - {name: shop, url: "https://shop.example/", failure_threshold: 1, reminder_minutes: 10,
     escalate: {after_minutes: 30, channels: [console]}}
  - {name: quiet, url: "https://quiet.example/", failure_threshold: 1, reminder_minutes: 0}
  - {name: plain, url: "https://plain.example/", failure_threshold: 1}
  - {name: cafe, url: "https://cafe.example/", failure_threshold: 1, reminder_minutes: 10}
"""


def open_alert(api, db, url: str) -> tuple[int, datetime]:
    """An ERROR for `url` through POST /events; its id and when it opened."""
    alert = api.send(event(url, ok=False))["alert"]
    [row] = db.rows("SELECT created_at FROM alerts WHERE id = ?", (alert["id"],))
    return alert["id"], datetime.fromisoformat(row["created_at"]).replace(tzinfo=timezone.utc)


def run_pass(app, at: datetime) -> int:
    service = app.extensions["outage"].service
    return queue_due_timers(service.engine, service.rules, service.channels, at)


def queued(db, alert_id: int) -> list[str]:
    return [row["notice_type"] for row in db.rows(
        "SELECT notice_type FROM deliveries WHERE alert_id = ? ORDER BY id", (alert_id,))]


def backdate(db, alert_id: int, minutes: float) -> None:
    """Make an alert look opened `minutes` earlier, its due times with it."""
    [row] = db.rows("SELECT created_at, remind_at, escalate_at FROM alerts WHERE id = ?", (alert_id,))
    shift = [(datetime.fromisoformat(value) - timedelta(minutes=minutes)).isoformat(sep=" ") if value else None
             for value in (row["created_at"], row["remind_at"], row["escalate_at"])]
    db.rows("UPDATE alerts SET created_at = ?, remind_at = ?, escalate_at = ? WHERE id = ? RETURNING id",
            (shift[0][:19], shift[1], shift[2], alert_id))


def test_the_timer_queues_a_due_reminder_once_and_it_says_how_long_the_alert_is_open(targets_yaml, app, api, db,
                                                                                      console):
    alert_id, opened = open_alert(api, db, "https://shop.example/")
    assert run_pass(app, opened + timedelta(minutes=9)) == 0  # not yet due
    backdate(db, alert_id, 11)  # the app's own timer thread finds it due within a tick
    wait_until(lambda: "REMINDER" in queued(db, alert_id), 10, message="a REMINDER queued")
    assert app.extensions["outage"].dispatcher.wait_idle(10)
    assert run_pass(app, datetime.now(timezone.utc)) == 0  # claimed: the next pass finds nothing due
    assert queued(db, alert_id) == ["ERROR", "REMINDER"]
    assert "[ALERT] REMINDER - https://shop.example/\n" in console.getvalue()
    assert "Message: Alert still open after 11 min, not acknowledged" in console.getvalue()
    assert [row["status"] for row in db.rows(
        "SELECT status FROM notification_logs WHERE notice_type = 'REMINDER'")] == ["SENT"]
    assert "remind_at" not in api.get(f"/alerts/{alert_id}").get_json()  # internal, like reason


def test_escalation_goes_out_once_and_reminders_go_on(targets_yaml, app, api, db):
    alert_id, opened = open_alert(api, db, "https://shop.example/")
    for minutes in (11, 21, 31, 41, 51):
        run_pass(app, opened + timedelta(minutes=minutes))
    assert queued(db, alert_id) == ["ERROR", "REMINDER", "REMINDER", "REMINDER", "ESCALATION", "REMINDER",
                                    "REMINDER"]


def test_ack_stops_reminders_and_escalation_and_resolve_stops_them_too(targets_yaml, app, api, db):
    acked, opened = open_alert(api, db, "https://shop.example/")
    resolved, _ = open_alert(api, db, "https://plain.example/")
    assert api.patch(f"/alerts/{acked}", json={"status": "ACK"}).status_code == 200
    assert api.patch(f"/alerts/{resolved}", json={"status": "RESOLVED"}).status_code == 200
    assert run_pass(app, opened + timedelta(hours=2)) == 0
    assert queued(db, acked) == ["ERROR"]


@with_env(REMINDER_MINUTES="5", FAILURE_THRESHOLD="1")
def test_reminder_minutes_is_the_default_and_a_target_can_turn_it_off(targets_yaml, app, api, db):
    plain, opened = open_alert(api, db, "https://plain.example/")  # no reminder_minutes: REMINDER_MINUTES
    quiet, _ = open_alert(api, db, "https://quiet.example/")      # reminder_minutes: 0
    unlisted, _ = open_alert(api, db, "https://elsewhere.example/")  # not in the file: REMINDER_MINUTES
    run_pass(app, opened + timedelta(minutes=6))
    assert (queued(db, plain), queued(db, quiet), queued(db, unlisted)) == (
        ["ERROR", "REMINDER"], ["ERROR"], ["ERROR", "REMINDER"])


def test_passes_running_at_once_queue_a_due_reminder_once(targets_yaml, app, api, db):
    """Two backend processes' passes (a lease handoff) racing for one due reminder: the conditional UPDATE decides."""
    alert_id, opened = open_alert(api, db, "https://shop.example/")
    start, counts = threading.Barrier(4), []

    def one_pass():
        start.wait(timeout=10)
        counts.append(run_pass(app, opened + timedelta(minutes=11)))

    threads = [threading.Thread(target=one_pass) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(counts) == [0, 0, 0, 1]
    assert queued(db, alert_id) == ["ERROR", "REMINDER"]


def test_while_silenced_reminders_write_nothing_and_the_escalation_waits_for_the_silences_end(targets_yaml, app, api,
                                                                                              db):
    ends = datetime.now(timezone.utc) + timedelta(seconds=6)
    made = api.post("/silences", json={"match": "shop", "ends_at": ends.isoformat(), "reason": "deploy"})
    assert made.status_code == 201, made.get_json()
    silence = f"silence {made.get_json()['id']}"
    alert_id, _ = open_alert(api, db, "https://shop.example/")
    backdate(db, alert_id, 31)  # a reminder and the escalation are due now, inside the silence
    run_pass(app, datetime.now(timezone.utc))  # the app's own timer may get there first: the claim decides

    def held():
        return [(r["notice_type"], r["status"], r["suppressed_by"]) for r in db.rows(
            "SELECT notice_type, status, suppressed_by FROM notification_logs WHERE alert_id = ? ORDER BY id",
            (alert_id,))]
    assert held() == [("ERROR", "SUPPRESSED", silence), ("ESCALATION", "SUPPRESSED", silence)]  # no REMINDER row
    assert queued(db, alert_id) == []
    # The silence ends with the alert still OPEN: the app's timer sends both, once.
    wait_until(lambda: len(queued(db, alert_id)) == 2, 20, message="the held notices queued at the silence's end")
    assert app.extensions["outage"].dispatcher.wait_idle(10)
    assert sorted(queued(db, alert_id)) == ["ERROR", "ESCALATION"]
    assert sorted(n for n, status, _ in held() if status == "SENT") == ["ERROR", "ESCALATION"]


def timers_of(db, alert_id: int) -> tuple:
    [row] = db.rows("SELECT remind_at, escalate_at FROM alerts WHERE id = ?", (alert_id,))
    return row["remind_at"], row["escalate_at"]


def test_a_paused_targets_due_reminder_and_escalation_are_claimed_and_write_nothing(targets_yaml, app, api, db):
    paused, _ = open_alert(api, db, "https://shop.example/")
    other, _ = open_alert(api, db, "https://cafe.example/")  # a later id: the pass reaches it after the paused one
    assert api.patch("/targets/shop", json={"paused": True}).status_code == 200
    backdate(db, paused, 31)  # its reminder and escalation are due
    backdate(db, other, 11)
    now = datetime.now(timezone.utc)
    run_pass(app, now)  # the app's own timer may get there first: the claims decide
    assert queued(db, paused) == ["ERROR"] and queued(db, other) == ["ERROR", "REMINDER"]
    remind_at, escalate_at = timers_of(db, paused)
    assert escalate_at == ESCALATED  # consumed: a paused alert has somebody's attention, it is not escalated later
    assert datetime.fromisoformat(remind_at).replace(tzinfo=timezone.utc) > now  # no longer due: nothing starves
    # Resumed, its reminders go on at their beat.
    assert api.patch("/targets/shop", json={"paused": False}).status_code == 200
    run_pass(app, now + timedelta(minutes=10))
    assert queued(db, paused) == ["ERROR", "REMINDER"]


def test_one_alert_that_fails_does_not_stop_the_pass_for_the_others(targets_yaml, app, api, db, caplog):
    broken, _ = open_alert(api, db, "https://shop.example/")
    other, _ = open_alert(api, db, "https://cafe.example/")
    backdate(db, other, 11)
    db.rows("UPDATE alerts SET remind_at = '2000-13-45 99:99:99' WHERE id = ? RETURNING id", (broken,))  # unreadable
    with caplog.at_level(logging.ERROR, logger="backend.alert_timers"):
        run_pass(app, datetime.now(timezone.utc))
        run_pass(app, datetime.now(timezone.utc))
    assert queued(db, other) == ["ERROR", "REMINDER"]
    said = [r for r in caplog.records if r.name == "backend.alert_timers" and f"alert {broken} " in r.getMessage()]
    assert len(said) == 1  # once, naming the alert, not once a pass


def test_a_failing_timer_duty_skips_neither_the_others_nor_the_deadlines(targets_yaml, app, api, db, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a fault in the silence-end duty")
    monkeypatch.setattr("backend.deadline_timer.release_ended", broken)
    alert_id, _ = open_alert(api, db, "https://cafe.example/")
    backdate(db, alert_id, 11)  # the app's own timer thread finds it due within a tick
    wait_until(lambda: "REMINDER" in queued(db, alert_id), 10, message="a REMINDER queued despite the fault")


def test_a_reload_that_turns_reminders_and_escalation_on_gives_them_to_alerts_already_open(targets_yaml, app, api, db):
    alert_id, opened = open_alert(api, db, "https://plain.example/")  # plain: neither, when it opened
    escalated, _ = open_alert(api, db, "https://shop.example/")
    run_pass(app, opened + timedelta(minutes=31))  # shop's escalation goes out (once) before the reload
    targets_yaml.write_text(TARGETS.replace('url: "https://plain.example/", failure_threshold: 1}',
                                            'url: "https://plain.example/", failure_threshold: 1, reminder_minutes: 10,'
                                            ' escalate: {after_minutes: 30, channels: [console]}}'),
                            encoding="utf-8")  # shop unchanged
    assert api.post("/targets/reload").status_code == 200
    remind_at, escalate_at = timers_of(db, alert_id)
    assert (datetime.fromisoformat(remind_at), datetime.fromisoformat(escalate_at)) == (
        opened.replace(tzinfo=None) + timedelta(minutes=10), opened.replace(tzinfo=None) + timedelta(minutes=30))
    run_pass(app, opened + timedelta(minutes=31))
    assert queued(db, alert_id) == ["ERROR", "REMINDER", "ESCALATION"]
    assert queued(db, escalated).count("ESCALATION") == 1  # an escalation already sent is not given again
