"""Background delivery of notices: one worker per channel, retries with backoff, one log row per attempt.

Delivery never runs on the request path: POST /events commits, hands the notices to `submit`, and
answers. Each channel has its own worker thread and queue, so a slow Telegram never holds up the
console, and notices for one channel go out in the order they were raised (ERROR before RECOVERY).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time

from sqlalchemy import Engine
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_when_event_set

from backend import store
from backend.messages import Notice
from backend.notifiers.base import DeliveryError, Notifier

log = logging.getLogger(__name__)

_STOP = object()
MAX_RETRY_AFTER_SECONDS = 300.0  # a channel asking for more than this gets this


def backoff_seconds(retry_number: int, base_seconds: float, jitter: float | None = None) -> float:
    """Wait before retry `retry_number` (1, 2, 3…): base, 2×base, 4×base, plus up to 10% jitter."""
    delay = base_seconds * 2 ** (retry_number - 1)
    return delay + (random.uniform(0, delay * 0.1) if jitter is None else jitter)


class Dispatcher:
    """Delivers notices on every enabled channel off the request thread (SPEC §6)."""

    def __init__(self, engine: Engine, notifiers: list[Notifier], retries: int = 3, backoff_base_seconds: float = 1.0):
        self.engine = engine
        self.notifiers = notifiers
        self.retries = retries
        self.backoff_base_seconds = backoff_base_seconds
        self._stopping = threading.Event()
        self._pending = 0
        self._idle = threading.Condition()
        self._queues: dict[str, queue.Queue] = {}
        self._threads: list[threading.Thread] = []
        for notifier in notifiers:
            q: queue.Queue = queue.Queue()
            self._queues[notifier.channel] = q
            thread = threading.Thread(target=self._work, args=(notifier, q), daemon=True,
                                      name=f"dispatch-{notifier.channel.lower()}")
            thread.start()
            self._threads.append(thread)

    def submit(self, notices: list[Notice]) -> None:
        """Queue every notice on every channel and return at once."""
        for notice in notices:
            for notifier in self.notifiers:
                with self._idle:
                    self._pending += 1
                self._queues[notifier.channel].put(notice)

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or being delivered, or `timeout` passes; True when idle."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the workers: finish the attempt in hand, skip further waits, join within `timeout`."""
        self._stopping.set()
        for q in self._queues.values():
            q.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self, notifier: Notifier, q: queue.Queue) -> None:
        while True:
            notice = q.get()
            if notice is _STOP:
                return
            try:
                if not self._stopping.is_set():
                    self._deliver(notifier, notice)
                else:
                    log.error("%s %s for alert %d not delivered: the backend is shutting down",
                              notifier.channel, notice.notice_type.value, notice.alert_id)
            except Exception:  # a worker must outlive any one notice
                log.exception("%s delivery of alert %d crashed", notifier.channel, notice.alert_id)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, notifier: Notifier, notice: Notice) -> None:
        """Try, record, and retry with backoff until sent or out of retries."""
        retrying = Retrying(
            stop=stop_after_attempt(self.retries + 1) | stop_when_event_set(self._stopping),
            wait=self._wait,
            sleep=self._stopping.wait,  # a shutdown cuts the wait short
            retry=retry_if_exception_type(DeliveryError),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._attempt(notifier, notice, attempt.retry_state.attempt_number - 1)
        except DeliveryError as exc:
            log.error("%s %s for alert %d FAILED after %d attempts: %s", notifier.channel,
                      notice.notice_type.value, notice.alert_id, retrying.statistics.get("attempt_number", 1),
                      exc.reason)

    def _wait(self, state: RetryCallState) -> float:
        delay = backoff_seconds(state.attempt_number, self.backoff_base_seconds)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, DeliveryError) and exc.retry_after_seconds:
            delay = max(delay, min(exc.retry_after_seconds, MAX_RETRY_AFTER_SECONDS))
        return delay

    def _attempt(self, notifier: Notifier, notice: Notice, retry_count: int) -> None:
        """One delivery attempt and its notification_logs row (SPEC §3)."""
        row = {"alert_id": notice.alert_id, "channel": notifier.channel, "notice_type": notice.notice_type.value,
               "retry_count": retry_count, "attempted_at": store.now_text()}
        try:
            try:
                message_id = notifier.send(notice)
            except DeliveryError:
                raise
            except Exception as exc:  # a bug in a channel is still a failed attempt, and recorded
                log.exception("%s raised unexpectedly", notifier.channel)
                raise DeliveryError(f"unexpected error: {exc.__class__.__name__}") from exc
        except DeliveryError as exc:
            self._record({**row, "status": "FAILED", "response_code": exc.response_code,
                          "error_message": exc.reason})
            log.warning("%s %s for alert %d attempt %d/%d failed: %s", notifier.channel,
                        notice.notice_type.value, notice.alert_id, retry_count + 1, self.retries + 1, exc.reason)
            raise
        self._record({**row, "status": "SENT", "message_id": message_id,
                      "response_code": 200 if message_id is not None else None})
        log.info("%s %s for alert %d sent (attempt %d)", notifier.channel, notice.notice_type.value,
                 notice.alert_id, retry_count + 1)

    def _record(self, row: dict) -> None:
        with self.engine.begin() as conn:
            store.insert_notification_log(conn, row)
