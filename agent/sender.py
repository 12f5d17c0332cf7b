"""Deliver spooled check results to the backend in batches, with retries and backoff (SPEC §7)."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterator

import requests
from tenacity import (RetryCallState, Retrying, retry_if_result, stop_after_attempt,
                      stop_when_event_set, wait_exponential_jitter)

from agent import metrics as agent_metrics
from agent.http_session import describe_error
from agent.config import AgentSettings
from agent.spool import Spool, SpooledEvent
from common.logs import plural

log = logging.getLogger(__name__)

MAX_RETRIES = 3
MAX_ATTEMPTS = MAX_RETRIES + 1
FIRST_DELAY_SECONDS = 1.0
MAX_JITTER_SECONDS = 0.5
SEND_TIMEOUT_SECONDS = 10.0
FIRST_BLOCKED_DELAY_SECONDS = 5.0  # after a batch's retries are used up, before the next pass
MAX_BLOCKED_DELAY_SECONDS = 30.0
IDLE_WAIT_SECONDS = 1.0  # an empty spool is looked at again this often, or when woken
# Under load, at most one POST per this many seconds unless a full batch waits: results that
# arrive meanwhile go together. A lone result after a quiet spell is sent at once.
MIN_SEND_GAP_SECONDS = 0.1
# The one `details.code` of a 400 (SPEC §4) on which the agent drops a result: it can never be
# stored. Any other refusal (unknown_field, clock_skew, a proxy's page) keeps it for a later try.
INVALID_EVENT = "invalid_event"


@dataclass(frozen=True)
class Reply:
    """What one POST attempt got: a status code, or None with the reason it got none."""
    status_code: int | None
    detail: str  # the backend's error text, or why there was no answer
    aborted: bool = False  # the agent is stopping; do not try again
    code: str | None = None  # the backend's `details.code` (SPEC §4), when it sent one

    def summary(self) -> str:
        if self.status_code is None:
            return self.detail
        return f"{self.status_code} ({self.code})" if self.code else str(self.status_code)

    def is_invalid_event(self) -> bool:
        """Whether the backend refused the event itself as one it can never store."""
        return self.status_code == 400 and self.code == INVALID_EVENT


def should_retry(status_code: int | None) -> bool:
    """Whether an attempt that ended this way is worth repeating: no answer, 429 or 5xx (SPEC §7)."""
    return status_code is None or status_code == 429 or 500 <= status_code <= 599


def backoff_delays() -> tuple[float, ...]:
    """The base waits before each retry, 1 s, 2 s, 4 s; up to MAX_JITTER_SECONDS is added to each."""
    return tuple(FIRST_DELAY_SECONDS * 2 ** n for n in range(MAX_RETRIES))


def is_delivered(status_code: int | None) -> bool:
    """Whether the backend has the events: 201 stored now, 200 stored by an earlier try; any 2xx."""
    return status_code is not None and 200 <= status_code <= 299


def send_batch(session: requests.Session, settings: AgentSettings, events: list[dict], *,
               sleep: Callable[[float], object] | None = None,
               stop_event: threading.Event | None = None) -> Reply:
    """POST `events` as one JSON array to `{backend_url}/events`, retrying as SPEC §7 says."""
    url = f"{settings.backend_url}/events"
    subject = f"send {plural(len(events), 'result')} to {url}"
    if sleep is None:
        # Waiting on the stop event lets SIGTERM cut a backoff short.
        sleep = stop_event.wait if stop_event is not None else time.sleep
    attempts = 0

    def attempt() -> Reply:
        nonlocal attempts
        if attempts and stop_event is not None and stop_event.is_set():
            return Reply(None, "agent stopping", aborted=True)
        attempts += 1
        return _post(session, url, settings.api_key, events)

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
    _log_outcome(subject, attempts, reply, stopping=stop_event is not None and stop_event.is_set(),
                 is_batch=len(events) > 1)
    return reply


def _post(session: requests.Session, url: str, api_key: str, events: list[dict]) -> Reply:
    """One attempt; network problems become a Reply without a status code."""
    try:
        with session.post(url, json=events, headers={"X-API-Key": api_key},
                          timeout=SEND_TIMEOUT_SECONDS, allow_redirects=False) as response:
            if is_delivered(response.status_code):
                return Reply(response.status_code, "")
            detail, code = _error_text(response)
            return Reply(response.status_code, detail, code=code)
    except requests.Timeout:
        return Reply(None, f"timed out after {SEND_TIMEOUT_SECONDS:g}s")
    except requests.RequestException as exc:
        return Reply(None, describe_error(exc, url))


def _error_text(response: requests.Response) -> tuple[str, str | None]:
    """The backend's `error` sentence and `details.code` (SPEC §4), or what else came back, and no code.

    A proxy's error page is named by its <title>, not shown as a run of markup.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    code = None
    if isinstance(body, dict) and body.get("error"):
        text = str(body["error"])
        details = body.get("details")
        if isinstance(details, dict) and isinstance(details.get("code"), str):
            code = details["code"]
    else:
        text = response.text or response.reason or ""
        title = _HTML_TITLE.search(text)
        if title:
            text = f"an HTML page titled {' '.join(title.group(1).split())!r}"
    return " ".join(text.split())[:300], code


_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def _log_outcome(subject: str, attempts: int, reply: Reply, *, stopping: bool, is_batch: bool) -> bool:
    """Log how the last attempt ended, and return whether the events were delivered."""
    line = f"{subject} attempt {attempts}/{MAX_ATTEMPTS} -> {reply.summary()}"
    if is_delivered(reply.status_code):
        log.info(line)
        return True
    if reply.aborted:
        log.error("%s abandoned after %d/%d attempts: agent stopping", subject, attempts, MAX_ATTEMPTS)
    elif not should_retry(reply.status_code):
        # A batch refused as invalid, or too large, is split (SpoolSender), so it is not yet an error.
        split = is_batch and (reply.is_invalid_event() or reply.status_code == 413)
        level = logging.WARNING if split else logging.ERROR
        log.log(level, "%s, not retried: %s", line, reply.detail or "no error text")
    elif stopping and attempts < MAX_ATTEMPTS:
        log.error("%s, giving up: agent stopping", line)
    else:
        log.error("%s, giving up after %d attempts", line, attempts)
    return False


class Progress(str, Enum):
    """What one pass of the spool sender achieved."""
    EMPTY = "EMPTY"      # nothing is spooled
    SENT = "SENT"        # results left the spool (delivered, or dropped as invalid)
    BLOCKED = "BLOCKED"  # the backend is down or refuses us: wait, the results stay spooled


def blocked_delays() -> Iterator[float]:
    """Waits between passes while the backend is unreachable or refuses: 5 s, 10 s, 20 s, then 30 s."""
    delay = FIRST_BLOCKED_DELAY_SECONDS
    while True:
        yield delay
        delay = min(delay * 2, MAX_BLOCKED_DELAY_SECONDS)


class SpoolSender:
    """Drains the spool to the backend, oldest first, in batches; the only code that deletes results."""

    def __init__(self, spool: Spool, settings: AgentSettings, session: requests.Session, *,
                 stop_event: threading.Event | None = None,
                 sleep: Callable[[float], object] | None = None,
                 delays: Callable[[], Iterator[float]] = blocked_delays):
        self.spool = spool
        self.settings = settings
        self.session = session
        self.stop_event = stop_event or threading.Event()
        self.sleep = sleep  # for send_batch's retry backoff; None waits on stop_event
        self.delays = delays  # the waits between passes while blocked
        self.invalid_dropped = 0

    def send_next_batch(self) -> Progress:
        """Send the oldest spooled results (up to the batch size) and settle them (SPEC §7)."""
        batch = self.spool.peek(self.settings.batch_size)
        if not batch:
            return Progress.EMPTY
        return self._deliver(batch)

    def drain(self, deadline: float | None = None) -> bool:
        """Send until the spool is empty (True), or the backend cannot take more right now, or the
        `time.monotonic()` deadline has passed (False); a batch under way is finished first."""
        while True:
            progress = self.send_next_batch()
            if progress is Progress.EMPTY:
                return True
            if progress is Progress.BLOCKED or self.stop_event.is_set():
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def run(self, wake: threading.Event) -> None:
        """The sender thread: drain, wait for `wake` (a new result) or a capped backoff, until stopped."""
        delays = self.delays()
        last_send = -MIN_SEND_GAP_SECONDS
        while not self.stop_event.is_set():
            gap = last_send + MIN_SEND_GAP_SECONDS - time.monotonic()
            if gap > 0 and len(self.spool) < self.settings.batch_size:
                self.stop_event.wait(gap)  # let more results gather: one POST for all of them
                continue
            last_send = time.monotonic()
            try:
                progress = self.send_next_batch()
            except Exception:  # a loop boundary: the sender thread must outlive any surprise
                log.exception("sending spooled results failed unexpectedly")
                progress = Progress.BLOCKED
            if progress is Progress.SENT:
                delays = self.delays()
            elif progress is Progress.EMPTY:
                wake.wait(IDLE_WAIT_SECONDS)
                wake.clear()  # a result spooled after this is seen by the next peek
            elif not self.stop_event.is_set():
                delay = next(delays)
                log.warning("%s in the spool, next send in %gs", plural(len(self.spool), "result"), delay)
                self.stop_event.wait(delay)

    def _deliver(self, batch: list[SpooledEvent]) -> Progress:
        reply = send_batch(self.session, self.settings, [item.event for item in batch],
                           sleep=self.sleep, stop_event=self.stop_event)
        if is_delivered(reply.status_code):
            self.spool.delete([item.id for item in batch])
            return Progress.SENT
        if reply.status_code == 413 and len(batch) > 1:
            half = batch[:len(batch) // 2]
            log.warning("send: %s are too large for one request, sending %d", plural(len(batch), "result"),
                        len(half))
            return self._deliver(half)
        if reply.is_invalid_event():
            return self._deliver_one_by_one(batch, reply) if len(batch) > 1 else self._drop_invalid(batch[0], reply)
        if reply.status_code is not None and not should_retry(reply.status_code):
            # Not a verdict on the results (a proxy's page, 401, unknown_field, clock_skew, ...):
            # the same results may well be taken later, so none is dropped.
            log.error("send: %s/events answered %s: %s kept in the spool, %d waiting; sending again later",
                      self.settings.backend_url, reply.summary(), plural(len(batch), "result"), len(self.spool))
        # Retries used up (already logged), the agent stopping, or a refusal: keep the results
        # and let the caller back off.
        agent_metrics.SEND_FAILURES.inc()
        return Progress.BLOCKED

    def _deliver_one_by_one(self, batch: list[SpooledEvent], reply: Reply) -> Progress:
        """Find the invalid results of a refused batch: the backend stores all of a batch or none.

        Each is judged on its own answer, never on the batch's `details.index`, so a result is
        dropped only when the backend refuses that result alone as `invalid_event`.
        """
        log.warning("send: the backend refused %s as invalid (%s), sending them one at a time",
                    plural(len(batch), "result"), reply.detail or "no error text")
        for item in batch:
            if self.stop_event.is_set() or self._deliver([item]) is Progress.BLOCKED:
                return Progress.BLOCKED
        return Progress.SENT

    def _drop_invalid(self, item: SpooledEvent, reply: Reply) -> Progress:
        """A result the backend refuses alone as `invalid_event` will never be stored: drop it, loudly and counted."""
        self.spool.delete([item.id])
        self.invalid_dropped += 1
        log.error("dropped invalid result %s for %s: %s (%s dropped since start)",
                  item.event_uid, item.event.get("target_url"), reply.detail or "no error text",
                  plural(self.invalid_dropped, "invalid result"))
        return Progress.SENT
