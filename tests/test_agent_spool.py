"""The write-ahead spool and the sender that drains it: order, durability, bound, and what deletes (SPEC §7)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import uuid

import pytest

from agent.sender import Progress, SpoolSender, blocked_delays
from agent.spool import Spool
from tests.support.procs import free_port, wait_until
from tests.support.fake_backend import backend, foreign, invalid, refusal, session  # noqa: F401
from tests.test_agent_sender import Sleeps, settings_for


def event(n: int) -> dict:
    return {
        "target_url": f"https://t{n}.example/",
        "timestamp": "2025-01-08T15:30:45.000Z",
        "is_success": True,
        "status_code": 200,
        "response_time_ms": n,
        "error_message": None,
        "event_uid": str(uuid.uuid4()),
    }


@pytest.fixture
def spool(tmp_path):
    s = Spool(tmp_path / "spool.db", max_events=1000)
    yield s
    s.close()




def sender_for(spool, backend_url: str, session, **environ) -> SpoolSender:
    return SpoolSender(spool, settings_for(backend_url, **environ), session, sleep=Sleeps())


def uids(events) -> list[str]:
    return [e["event_uid"] for e in events]


# --- the spool on its own ---------------------------------------------------------------------

def test_events_come_back_oldest_first_and_stay_until_deleted(spool):
    events = [event(n) for n in range(5)]
    for e in events:
        spool.add(e)
    first = spool.peek(3)
    assert [item.event for item in first] == events[:3]
    assert spool.peek(3) == first  # peeking removes nothing
    assert spool.delete([item.id for item in first]) == 3
    assert [item.event for item in spool.peek(10)] == events[3:]
    assert len(spool) == 2


def test_the_same_event_uid_is_spooled_once(spool):
    e = event(1)
    spool.add(e)
    spool.add(dict(e))
    assert len(spool) == 1 and len(spool.peek(10)) == 1


def test_the_spool_survives_a_reopen_in_wal_mode(tmp_path):
    path = tmp_path / "spool.db"
    first = Spool(path, max_events=100)
    events = [event(n) for n in range(3)]
    for e in events:
        first.add(e)
    first.close()
    again = Spool(path, max_events=100)
    try:
        assert [item.event for item in again.peek(10)] == events
        assert len(again) == 3
        again.add(event(9))
        assert uids(item.event for item in again.peek(10))[:3] == uids(events)  # still oldest first
    finally:
        again.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_full_spool_drops_the_oldest_counts_them_and_logs_an_error(tmp_path, caplog):
    spool = Spool(tmp_path / "spool.db", max_events=3)
    events = [event(n) for n in range(5)]
    with caplog.at_level(logging.INFO, logger="agent"):
        for e in events:
            spool.add(e)
    try:
        assert uids(item.event for item in spool.peek(10)) == uids(events[2:])
        assert spool.dropped_since_start == 2
        errors = [(r.levelname, r.getMessage()) for r in caplog.records]
        assert errors == [("ERROR", "spool full: dropped 1 oldest result (1 dropped since start)"),
                          ("ERROR", "spool full: dropped 1 oldest result (2 dropped since start)")]
    finally:
        spool.close()


def test_a_reopened_spool_over_a_smaller_bound_drops_at_the_next_insert(tmp_path, caplog):
    first = Spool(tmp_path / "spool.db", max_events=10)
    for n in range(6):
        first.add(event(n))
    first.close()
    smaller = Spool(tmp_path / "spool.db", max_events=4)
    try:
        with caplog.at_level(logging.ERROR, logger="agent"):
            smaller.add(event(6))
        assert len(smaller) == 4
        assert "spool full: dropped 3 oldest results (3 dropped since start)" in caplog.text
    finally:
        smaller.close()


def test_threads_inserting_while_another_deletes_lose_nothing(spool):
    def insert(k):
        for n in range(50):
            spool.add(event(k * 100 + n))

    threads = [threading.Thread(target=insert, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    seen: list[str] = []
    while any(t.is_alive() for t in threads) or len(spool):
        batch = spool.peek(7)
        seen += uids(item.event for item in batch)
        spool.delete([item.id for item in batch])
    for t in threads:
        t.join(timeout=10)
    assert len(seen) == len(set(seen)) == 200


# --- the sender draining it -------------------------------------------------------------------

def test_drain_sends_oldest_first_in_batches_of_the_batch_size(spool, backend, session):
    events = [event(n) for n in range(5)]
    for e in events:
        spool.add(e)
    assert sender_for(spool, backend.url, session, AGENT_BATCH_SIZE="2").drain() is True
    assert [len(r["body"]) for r in backend.received()] == [2, 2, 1]
    assert uids(backend.received_events()) == uids(events)
    assert len(spool) == 0


def test_503_three_times_then_201_delivers_with_the_same_uids(spool, backend, session):
    events = [event(n) for n in range(3)]
    for e in events:
        spool.add(e)
    backend.script = [503, 503, 503, 201]
    assert sender_for(spool, backend.url, session).drain() is True
    bodies = [r["body"] for r in backend.received()]
    assert len(bodies) == 4 and all(body == events for body in bodies)
    assert uids(backend.stored_events()) == uids(events)
    assert len(spool) == 0


def test_a_backend_down_after_all_retries_keeps_every_event(spool, session, caplog):
    events = [event(n) for n in range(3)]
    for e in events:
        spool.add(e)
    sender = sender_for(spool, f"http://127.0.0.1:{free_port()}", session)
    with caplog.at_level(logging.INFO, logger="agent"):
        assert sender.send_next_batch() is Progress.BLOCKED
    assert [item.event for item in spool.peek(10)] == events
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "giving up after 4 attempts" in errors[0]  # once per give-up, not per event


def test_200_for_an_already_stored_batch_counts_as_delivered(spool, backend, session):
    e = event(1)
    backend.stored_uids.add(e["event_uid"])  # stored by an earlier try whose answer was lost
    spool.add(e)
    assert sender_for(spool, backend.url, session).drain() is True
    assert len(spool) == 0
    assert backend.stored_events() == []  # not stored twice


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_keep_the_events_and_log_the_backend_error(spool, backend, session, caplog, status):
    spool.add(event(1))
    backend.status = status
    with caplog.at_level(logging.INFO, logger="agent"):
        assert sender_for(spool, backend.url, session).send_next_batch() is Progress.BLOCKED
    assert len(spool) == 1
    assert len(backend.received()) == 1  # not retried
    assert f"-> {status}, not retried: scripted {status}" in caplog.text
    assert [r.levelname for r in caplog.records if "scripted" in r.getMessage()] == ["ERROR"]


# Answers that say nothing against the results themselves: whatever the batch, none is dropped.
NOT_ABOUT_THE_EVENT = [
    pytest.param(foreign(400), id="a proxy's 400 page"),
    pytest.param(foreign(403), id="a proxy's 403 page"),
    pytest.param(foreign(404), id="a proxy's 404 page"),
    pytest.param(400, id="a 400 without a code"),
    pytest.param(refusal("unknown_field"), id="unknown_field"),
    pytest.param(refusal("clock_skew"), id="clock_skew"),
    pytest.param(refusal("invalid_request"), id="invalid_request"),
    pytest.param(refusal("clock_skew", index=0), id="clock_skew at an index"),
    pytest.param(401, id="401"),
]


@pytest.mark.parametrize("answer", NOT_ABOUT_THE_EVENT)
@pytest.mark.parametrize("size", [1, 3])
def test_a_refusal_not_about_the_event_keeps_every_result_until_the_backend_accepts(
        spool, backend, session, caplog, answer, size):
    events = [event(n) for n in range(size)]
    for e in events:
        spool.add(e)
    backend.status = answer
    sender = sender_for(spool, backend.url, session)
    with caplog.at_level(logging.INFO, logger="agent"):
        assert sender.send_next_batch() is Progress.BLOCKED
        assert sender.send_next_batch() is Progress.BLOCKED  # the next pass: refused again, kept again
    assert uids(item.event for item in spool.peek(10)) == uids(events)
    assert sender.invalid_dropped == 0
    assert len(backend.received()) == 2  # neither retried at once nor split
    kept = [r for r in caplog.records if "kept in the spool" in r.getMessage()]
    assert [r.levelname for r in kept] == ["ERROR", "ERROR"]
    status = answer if isinstance(answer, int) else answer.status
    result_s = "1 result" if size == 1 else f"{size} results"
    assert kept[0].getMessage().startswith(f"send: {backend.url}/events answered {status}")
    assert kept[0].getMessage().endswith(f": {result_s} kept in the spool, {size} waiting; sending again later")

    backend.status = 201  # the proxy is fixed, the backend upgraded, the clock right
    assert sender.drain() is True
    assert uids(backend.stored_events()) == uids(events)
    assert len(spool) == 0


def test_the_refusal_s_code_and_a_proxy_page_s_title_are_in_the_log(spool, backend, session, caplog):
    spool.add(event(1))
    backend.script = [refusal("clock_skew"), foreign(403)]
    sender = sender_for(spool, backend.url, session)
    with caplog.at_level(logging.INFO, logger="agent"):
        sender.send_next_batch()
        sender.send_next_batch()
    text = caplog.text
    assert "attempt 1/4 -> 400 (clock_skew), not retried: scripted clock_skew" in text
    assert "answered 400 (clock_skew): 1 result kept in the spool" in text
    assert "attempt 1/4 -> 403, not retried: an HTML page titled '403 Refused by proxy'" in text
    assert "<html>" not in text


def test_the_sender_thread_backs_off_while_refused_and_delivers_when_accepted(spool, backend, session, caplog):
    stop, wake = threading.Event(), threading.Event()
    backend.script = [refusal("clock_skew")] * 3
    waits: list[float] = []

    def delays():  # the real ones (5 s, 10 s, ...) recorded, and waited for only 10 ms
        for delay in blocked_delays():
            waits.append(delay)
            yield 0.01

    sender = SpoolSender(spool, settings_for(backend.url), session, stop_event=stop, delays=delays)
    events = [event(n) for n in range(3)]
    for e in events:
        spool.add(e)
    thread = threading.Thread(target=sender.run, args=(wake,), daemon=True)
    with caplog.at_level(logging.INFO, logger="agent"):
        thread.start()
        try:
            wait_until(lambda: len(backend.stored_events()) == 3, 10, message="the results delivered")
        finally:
            stop.set()
            wake.set()
            thread.join(timeout=5)
    assert not thread.is_alive()
    assert uids(backend.stored_events()) == uids(events)
    assert len(spool) == 0 and sender.invalid_dropped == 0
    assert waits == [5.0, 10.0, 20.0]  # growing, bounded waits between the refused passes
    assert caplog.text.count("3 results kept in the spool, 3 waiting") == 3


def test_413_halves_the_batch_for_this_attempt(spool, backend, session):
    events = [event(n) for n in range(8)]
    for e in events:
        spool.add(e)
    backend.script = [lambda batch: 413 if len(batch) > 2 else 201] * 20
    assert sender_for(spool, backend.url, session).drain() is True
    assert [len(r["body"]) for r in backend.received()][:3] == [8, 4, 2]
    assert uids(backend.stored_events()) == uids(events)
    assert len(spool) == 0


def test_a_rejected_batch_is_resent_one_by_one_and_only_the_invalid_event_is_dropped(
        spool, backend, session, caplog):
    events = [event(n) for n in range(4)]
    bad = events[2]["event_uid"]
    for e in events:
        spool.add(e)
    backend.status = invalid(bad)
    sender = sender_for(spool, backend.url, session)
    with caplog.at_level(logging.INFO, logger="agent"):
        assert sender.drain() is True
    assert [len(r["body"]) for r in backend.received()] == [4, 1, 1, 1, 1]
    assert uids(backend.stored_events()) == uids(events[:2] + events[3:])
    assert len(spool) == 0
    assert sender.invalid_dropped == 1
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors[-1] == (f"dropped invalid result {bad} for https://t2.example/: scripted invalid_event "
                          f"(1 invalid result dropped since start)")


def test_a_rejected_batch_stops_at_a_backend_that_goes_down_and_keeps_the_rest(spool, backend, session):
    events = [event(n) for n in range(3)]
    for e in events:
        spool.add(e)
    backend.script = [refusal("invalid_event", index=2), 201]
    backend.status = 503
    assert sender_for(spool, backend.url, session).send_next_batch() is Progress.BLOCKED
    assert uids(item.event for item in spool.peek(10)) == uids(events[1:])


def test_a_batch_split_for_an_invalid_result_stops_at_a_clock_skew_and_keeps_it(spool, backend, session):
    events = [event(n) for n in range(4)]
    for e in events:
        spool.add(e)
    backend.script = [refusal("invalid_event", index=3), 201, refusal("clock_skew")]
    sender = sender_for(spool, backend.url, session)
    assert sender.send_next_batch() is Progress.BLOCKED
    assert uids(item.event for item in spool.peek(10)) == uids(events[1:])  # only the delivered one left
    assert sender.invalid_dropped == 0


def test_drain_starts_no_batch_past_its_deadline_and_keeps_the_rest(spool, backend, session):
    events = [event(n) for n in range(5)]
    for e in events:
        spool.add(e)
    sender = sender_for(spool, backend.url, session, AGENT_BATCH_SIZE="2")
    assert sender.drain(deadline=time.monotonic()) is False  # the deadline is already here
    assert [len(r["body"]) for r in backend.received()] == [2]  # the batch under way was finished
    assert uids(item.event for item in spool.peek(10)) == uids(events[2:])


def test_once_waits_a_bounded_time_for_a_spool_that_cannot_commit_and_says_what_stays(
        tmp_path, backend, monkeypatch, caplog):  # noqa: F811
    """A full disk, say: --once must end, exit 1, and say so, not wait for the commit for ever."""
    import agent.agent
    from agent.agent import Agent
    from agent.spool import SpoolWriter
    from tests.support.servers import TargetServer
    monkeypatch.setattr(agent.agent, "ONCE_COMMIT_LIMIT_SECONDS", 0.5)
    monkeypatch.setattr(SpoolWriter, "RETRY_SECONDS", 0.05)
    target = TargetServer().start()
    spool = Spool(tmp_path / "spool.db", max_events=1000)

    def full_disk(events):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(spool, "add_many", full_disk)
    settings = settings_for(backend.url, TARGET_URL=target.url, AGENT_SPOOL_FILE=str(spool.path))
    once = Agent(settings, threading.Event(), spool)
    status: list[int] = []
    thread = threading.Thread(target=lambda: status.append(once.run_once()), daemon=True)
    try:
        with caplog.at_level(logging.INFO, logger="agent"):
            thread.start()
            thread.join(timeout=30)
            assert not thread.is_alive(), "--once still waits for the spool"
    finally:
        once.shutdown()
        target.stop()
    assert status == [1]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and "round done" in r.getMessage()]
    assert errors == [f"round done: 1 result not written to the spool {spool.path} within 0.5s (a full disk?)"]
    assert "spool writer stopped with 1 result not committed, lost" in caplog.text


def test_each_event_uid_is_unique_and_survives_retries(spool, backend, session):
    from agent.checks.result import CheckResult
    from datetime import datetime, timezone
    results = [CheckResult("https://t.example/", datetime.now(timezone.utc), True, 200, 3, None)
               for _ in range(20)]
    for r in results:
        spool.add(r.to_event())
    backend.script = [500, 500]
    assert sender_for(spool, backend.url, session).drain() is True
    sent = [uids(r["body"]) for r in backend.received()]
    assert sent[0] == sent[1] == sent[2]
    assert len(set(sent[0])) == 20
    assert all(str(uuid.UUID(uid)) == uid for uid in sent[0])


def test_the_sender_thread_delivers_what_is_spooled_later_and_stops_on_the_flag(spool, backend, session):
    stop, wake = threading.Event(), threading.Event()
    sender = SpoolSender(spool, settings_for(backend.url), session, stop_event=stop)
    thread = threading.Thread(target=sender.run, args=(wake,), daemon=True)
    thread.start()
    try:
        e = event(1)
        spool.add(e)
        wake.set()
        deadline = threading.Event()
        for _ in range(100):
            if backend.stored_events():
                break
            deadline.wait(0.05)
        assert uids(backend.stored_events()) == [e["event_uid"]]
    finally:
        stop.set()
        wake.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


# --- group commit: the writer thread ------------------------------------------------------------

def test_the_writer_commits_a_burst_in_few_transactions_in_the_order_put(spool):
    from agent.spool import SpoolWriter
    commits = []
    writer = SpoolWriter(spool, on_commit=lambda: commits.append(len(spool)))
    events = [event(n) for n in range(300)]
    try:
        for e in events:
            writer.put(e)
        assert writer.flush(timeout=10) is True
        assert uids(item.event for item in spool.peek(1000)) == uids(events)
        assert len(writer) == 0
        assert 1 <= writer.commits < len(events)  # grouped: not one fsync per result
        assert commits[-1] == 300  # the sender is woken after the commits, when the events are readable
    finally:
        writer.close()


def test_closing_the_writer_commits_everything_still_queued(tmp_path):
    from agent.spool import SpoolWriter
    spool = Spool(tmp_path / "spool.db", max_events=1000)
    writer = SpoolWriter(spool)
    events = [event(n) for n in range(200)]
    for e in events:
        writer.put(e)
    assert writer.close(timeout=10) is True
    spool.close()
    again = Spool(tmp_path / "spool.db", max_events=1000)
    try:
        assert uids(item.event for item in again.peek(1000)) == uids(events)
    finally:
        again.close()


def test_a_failing_commit_is_retried_and_loses_nothing(spool, monkeypatch, caplog):
    from agent.spool import SpoolWriter
    monkeypatch.setattr(SpoolWriter, "RETRY_SECONDS", 0.05)
    real_add_many, failures = spool.add_many, [1]

    def flaky(events):
        if failures:
            failures.pop()
            raise sqlite3.OperationalError("disk I/O error")
        return real_add_many(events)

    monkeypatch.setattr(spool, "add_many", flaky)
    writer = SpoolWriter(spool)
    try:
        with caplog.at_level(logging.ERROR, logger="agent"):
            e = event(1)
            writer.put(e)
            assert writer.flush(timeout=10) is True
        assert uids(item.event for item in spool.peek(10)) == [e["event_uid"]]
        assert "committing 1 result failed, retrying" in caplog.text
    finally:
        writer.close()


_CRASHING_WRITER = """
import sys, time, uuid
sys.path.insert(0, sys.argv[2])
from agent.spool import Spool, SpoolWriter
writer = SpoolWriter(Spool(sys.argv[1], max_events=1_000_000))
n = 0
while True:  # put numbered results, a burst of 50 every millisecond or so, until SIGKILLed
    for _ in range(50):
        writer.put({"seq": n, "event_uid": str(uuid.uuid4())})
        n += 1
    time.sleep(0.001)
"""


def test_a_killed_agent_leaves_the_oldest_results_committed_in_order_with_no_gap(tmp_path):
    """Group commit and `kill -9`: what survives is always a prefix of what was put, in order."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from tests.support.procs import ROOT, wait_until

    path = tmp_path / "spool.db"

    def committed() -> list[int]:
        if not path.exists():
            return []
        db = sqlite3.connect(path, timeout=10)
        try:
            return [json_seq for (json_seq,) in db.execute(
                "SELECT json_extract(body, '$.seq') FROM spooled_events ORDER BY id")]
        except sqlite3.OperationalError:  # the table is not made yet
            return []
        finally:
            db.close()

    proc = subprocess.Popen([sys.executable, "-c", _CRASHING_WRITER, str(path), str(ROOT)])
    try:
        wait_until(lambda: len(committed()) >= 2000, 30, message="2000 results committed")
        time.sleep(0.05)  # kill it mid-stream, with a group in flight
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    seqs = committed()
    assert len(seqs) >= 2000
    assert seqs == list(range(len(seqs)))
