"""Deliver check results to the backend with retries and exponential backoff (SPEC §7)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import requests
from tenacity import (RetryCallState, Retrying, retry_if_result, stop_after_attempt,
                      stop_when_event_set, wait_exponential_jitter)

from agent.checker import describe_error
from agent.config import AgentSettings

log = logging.getLogger(__name__)

MAX_RETRIES = 3
MAX_ATTEMPTS = MAX_RETRIES + 1
FIRST_DELAY_SECONDS = 1.0
MAX_JITTER_SECONDS = 0.5
SEND_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Reply:
    """What one POST attempt got: a status code, or None with the reason it got none."""
    status_code: int | None
    detail: str  # the backend's error text, or why there was no answer
    aborted: bool = False  # the agent is stopping; do not try again

    def summary(self) -> str:
        return str(self.status_code) if self.status_code is not None else self.detail


def should_retry(status_code: int | None) -> bool:
    """Whether an attempt that ended this way is worth repeating: no answer, 429 or 5xx (SPEC §7)."""
    return status_code is None or status_code == 429 or 500 <= status_code <= 599


def backoff_delays() -> tuple[float, ...]:
    """The base waits before each retry, 1 s, 2 s, 4 s; up to MAX_JITTER_SECONDS is added to each."""
    return tuple(FIRST_DELAY_SECONDS * 2 ** n for n in range(MAX_RETRIES))


def is_delivered(status_code: int | None) -> bool:
    """Whether the backend accepted the event (it answers 201; any 2xx counts)."""
    return status_code is not None and 200 <= status_code <= 299


def send_event(session: requests.Session, settings: AgentSettings, event: dict, *,
               sleep: Callable[[float], object] | None = None,
               stop_event: threading.Event | None = None) -> bool:
    """POST one event to `{backend_url}/events`, retrying as SPEC §7 says; True when delivered."""
    url = f"{settings.backend_url}/events"
    subject = f"send {event.get('target_url')}"
    if sleep is None:
        # Waiting on the stop event lets SIGTERM cut a backoff short.
        sleep = stop_event.wait if stop_event is not None else time.sleep
    attempts = 0

    def attempt() -> Reply:
        nonlocal attempts
        if attempts and stop_event is not None and stop_event.is_set():
            return Reply(None, "agent stopping", aborted=True)
        attempts += 1
        return _post(session, url, settings.api_key, event)

    def log_retry(state: RetryCallState) -> None:
        reply: Reply = state.outcome.result()
        log.warning("%s attempt %d/%d -> %s, retrying in %.1fs", subject, state.attempt_number,
                    MAX_ATTEMPTS, reply.summary(), state.next_action.sleep)

    stop = stop_after_attempt(MAX_ATTEMPTS)
    if stop_event is not None:
        stop = stop | stop_when_event_set(stop_event)
    retrying = Retrying(
        stop=stop,
        wait=wait_exponential_jitter(initial=FIRST_DELAY_SECONDS, exp_base=2,
                                     max=max(backoff_delays()) + MAX_JITTER_SECONDS,
                                     jitter=MAX_JITTER_SECONDS),
        retry=retry_if_result(lambda reply: not reply.aborted and should_retry(reply.status_code)),
        sleep=sleep,
        before_sleep=log_retry,
        retry_error_callback=lambda state: state.outcome.result(),  # the last Reply, not RetryError
    )
    reply: Reply = retrying(attempt)
    return _log_outcome(subject, attempts, reply, stopping=stop_event is not None and stop_event.is_set())


def _post(session: requests.Session, url: str, api_key: str, event: dict) -> Reply:
    """One attempt; network problems become a Reply without a status code."""
    try:
        with session.post(url, json=event, headers={"X-API-Key": api_key},
                          timeout=SEND_TIMEOUT_SECONDS, allow_redirects=False) as response:
            detail = "" if is_delivered(response.status_code) else _error_text(response)
            return Reply(response.status_code, detail)
    except requests.Timeout:
        return Reply(None, f"timed out after {SEND_TIMEOUT_SECONDS:g}s")
    except requests.RequestException as exc:
        return Reply(None, describe_error(exc, url))


def _error_text(response: requests.Response) -> str:
    """The backend's `error` sentence (SPEC §4), or the start of whatever body came back."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        text = str(body["error"])
    else:
        text = response.text or response.reason or ""
    return " ".join(text.split())[:300]


def _log_outcome(subject: str, attempts: int, reply: Reply, *, stopping: bool) -> bool:
    """Log how the last attempt ended, and return whether the event was delivered."""
    line = f"{subject} attempt {attempts}/{MAX_ATTEMPTS} -> {reply.summary()}"
    if is_delivered(reply.status_code):
        log.info(line)
        return True
    if reply.aborted:
        log.error("%s abandoned after %d/%d attempts: agent stopping", subject, attempts, MAX_ATTEMPTS)
    elif not should_retry(reply.status_code):
        log.error("%s, not retried: %s", line, reply.detail or "no error text")
    elif stopping and attempts < MAX_ATTEMPTS:
        log.error("%s, giving up: agent stopping", line)
    else:
        log.error("%s, giving up after %d attempts", line, attempts)
    return False
