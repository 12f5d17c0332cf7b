"""Sending batches to a real fake backend on 127.0.0.1: retries, backoff, what is not retried (SPEC §7)."""

from __future__ import annotations

import logging
import threading

import pytest

from agent.config import load_settings
from agent.sender import MAX_JITTER_SECONDS, backoff_delays, blocked_delays, send_batch, should_retry
from tests.support.fake_backend import backend, session  # noqa: F401  (fixtures)
from tests.support.procs import free_port

API_KEY = "test-key-0123456789"
EVENT = {
    "target_url": "https://t.example/",
    "timestamp": "2025-01-08T15:30:45.000Z",
    "is_success": False,
    "status_code": 503,
    "response_time_ms": 812,
    "error_message": "HTTP 503 Service Unavailable",
    "event_uid": "0b7f5a8e-3c1d-4f53-9a55-6c1e2f0d9a11",
}




def settings_for(backend_url: str, **environ: str):
    return load_settings({"API_KEY": API_KEY, "BACKEND_URL": backend_url, **environ})


class Sleeps(list):
    """An injected sleep that records each delay instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.mark.parametrize("status_code, expected", [
    (None, True),   # connection error or timeout
    (500, True),
    (502, True),
    (503, True),
    (599, True),
    (429, True),
    (400, False),
    (401, False),
    (404, False),
    (413, False),
    (415, False),
    (200, False),
    (201, False),
])
def test_should_retry_only_missing_answers_429_and_5xx(status_code, expected):
    assert should_retry(status_code) is expected


def test_backoff_doubles_from_one_second():
    assert backoff_delays() == (1.0, 2.0, 4.0)


def test_backoff_between_passes_doubles_from_five_seconds_up_to_thirty():
    delays = blocked_delays()
    assert [next(delays) for _ in range(6)] == [5.0, 10.0, 20.0, 30.0, 30.0, 30.0]


def test_201_is_delivered_at_the_first_attempt_with_key_and_a_json_array_as_sent(backend, session):
    sleeps = Sleeps()
    reply = send_batch(session, settings_for(backend.url), [EVENT], sleep=sleeps)
    assert reply.status_code == 201
    [request] = backend.received()
    assert request["path"] == "/events"
    assert request["headers"]["X-API-Key"] == API_KEY
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == [EVENT]
    assert sleeps == []


def test_503_twice_then_201_is_delivered_at_the_third_attempt_with_growing_backoff(backend, session, caplog):
    backend.script = [503, 503, 201]
    sleeps = Sleeps()
    with caplog.at_level(logging.INFO, logger="agent"):
        assert send_batch(session, settings_for(backend.url), [EVENT], sleep=sleeps).status_code == 201
    assert len(backend.received()) == 3
    assert len(sleeps) == 2
    for delay, base in zip(sleeps, backoff_delays()):
        assert base <= delay <= base + MAX_JITTER_SECONDS
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages[0][0] == "WARNING"
    assert messages[0][1].startswith(f"send 1 result to {backend.url}/events attempt 1/4 -> 503, retrying in ")
    assert messages[-1] == ("INFO", f"send 1 result to {backend.url}/events attempt 3/4 -> 201")


def test_a_retried_batch_repeats_the_same_events_and_uids(backend, session):
    backend.script = [503, 201]
    second = {**EVENT, "event_uid": "5d0c8f7e-1111-4e2b-8c3a-000000000002"}
    send_batch(session, settings_for(backend.url), [EVENT, second], sleep=Sleeps())
    first_try, second_try = (r["body"] for r in backend.received())
    assert first_try == second_try == [EVENT, second]


def test_a_send_is_logged_by_its_size_and_the_backend_url_not_a_target_url(backend, session, caplog):
    with caplog.at_level(logging.INFO, logger="agent"):
        send_batch(session, settings_for(backend.url), [EVENT, {**EVENT, "event_uid": "x"}], sleep=Sleeps())
        send_batch(session, settings_for(backend.url), [EVENT], sleep=Sleeps())
    assert [r.getMessage() for r in caplog.records] == [
        f"send 2 results to {backend.url}/events attempt 1/4 -> 201",
        f"send 1 result to {backend.url}/events attempt 1/4 -> 200",  # stored already
    ]
    assert EVENT["target_url"] not in caplog.text


def test_400_is_not_retried_and_its_error_is_logged(backend, session, caplog):
    backend.status = 400
    sleeps = Sleeps()
    with caplog.at_level(logging.INFO, logger="agent"):
        assert send_batch(session, settings_for(backend.url), [EVENT], sleep=sleeps).status_code == 400
    assert len(backend.received()) == 1
    assert sleeps == []
    [record] = caplog.records
    assert record.levelname == "ERROR"
    assert "attempt 1/4 -> 400" in record.getMessage()
    assert "scripted 400" in record.getMessage()


def test_429_is_retried(backend, session):
    backend.script = [429]
    sleeps = Sleeps()
    assert send_batch(session, settings_for(backend.url), [EVENT], sleep=sleeps).status_code == 201
    assert len(backend.received()) == 2
    assert len(sleeps) == 1


def test_a_backend_that_keeps_failing_is_given_up_after_four_attempts(backend, session, caplog):
    backend.status = 500
    sleeps = Sleeps()
    with caplog.at_level(logging.INFO, logger="agent"):
        assert send_batch(session, settings_for(backend.url), [EVENT], sleep=sleeps).status_code == 500
    assert len(backend.received()) == 4
    assert len(sleeps) == 3
    assert sleeps == sorted(sleeps)
    last = caplog.records[-1]
    assert last.levelname == "ERROR"
    assert "attempt 4/4 -> 500, giving up" in last.getMessage()
    assert [r.levelname for r in caplog.records].count("ERROR") == 1


def test_connection_refused_is_retried_then_given_up_with_the_reason(session, caplog):
    sleeps = Sleeps()
    backend_url = f"http://127.0.0.1:{free_port()}"
    settings = settings_for(backend_url)
    with caplog.at_level(logging.INFO, logger="agent"):
        assert send_batch(session, settings, [EVENT], sleep=sleeps).status_code is None
    assert len(sleeps) == 3
    attempts = [r.getMessage() for r in caplog.records]
    assert len(attempts) == 4
    assert all("connection refused" in line for line in attempts)
    assert attempts[-1].startswith(f"send 1 result to {backend_url}/events attempt 4/4 -> Connection failed")


def test_a_stop_during_backoff_abandons_the_send(backend, session):
    backend.status = 503
    stop = threading.Event()
    sleeps = Sleeps()

    def sleep(seconds):
        sleeps.append(seconds)
        stop.set()  # as if SIGTERM arrived while waiting

    reply = send_batch(session, settings_for(backend.url), [EVENT], sleep=sleep, stop_event=stop)
    assert reply.aborted or reply.status_code == 503
    assert len(backend.received()) == 1
    assert len(sleeps) == 1


def test_a_stop_already_set_allows_one_attempt_and_no_wait(backend, session):
    backend.status = 503
    stop = threading.Event()
    stop.set()
    sleeps = Sleeps()
    assert send_batch(session, settings_for(backend.url), [EVENT], sleep=sleeps, stop_event=stop).status_code == 503
    assert len(backend.received()) == 1
    assert sleeps == []


def test_the_api_key_never_reaches_the_log(backend, session, caplog):
    backend.script = [503, 400]
    with caplog.at_level(logging.DEBUG):
        send_batch(session, settings_for(backend.url), [EVENT], sleep=Sleeps())
    assert caplog.records
    assert API_KEY not in caplog.text
