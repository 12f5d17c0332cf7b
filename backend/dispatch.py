"""The outbox dispatcher: delivers queued notices with retries, one notification_logs row per attempt.

POST /events never delivers anything itself. Its transaction writes the alert change and one
`deliveries` row per channel; this dispatcher delivers those rows afterwards. Each channel has its
own worker thread, so a slow Telegram never holds up the console, and a named lease in the
database makes sure that however many backend processes run, exactly one works each channel. A
process that dies mid-delivery leaves the row PENDING, and whoever holds the lease next delivers it
(at least once: a message that went out just before a kill -9 may go out again).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine

from backend import store
from backend.database import write_transaction
from backend.messages import Notice
from backend.notifiers.base import DeliveryError, Notifier
from backend.rules import AlertType
from common.logs import plural

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_SECONDS = 300.0  # a channel asking for a longer pause gets this one


def backoff_seconds(retry_number: int, base_seconds: float, jitter: float | None = None) -> float:
    """Wait before retry `retry_number` (1, 2, 3…): base, 2×base, 4×base, plus up to 10% jitter."""
    delay = base_seconds * 2 ** (retry_number - 1)
    return delay + (random.uniform(0, delay * 0.1) if jitter is None else jitter)


class Dispatcher:
    """Delivers the outbox on every enabled channel, off the request path (SPEC §6)."""

    def __init__(self, engine: Engine, notifiers: list[Notifier], retries: int = 3,
                 backoff_base_seconds: float = 1.0, poll_seconds: float = 0.2, lease_seconds: float = 30.0):
        self.engine = engine
        self.notifiers = notifiers
        self.retries = retries
        self.backoff_base_seconds = backoff_base_seconds
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stopping = threading.Event()
        self._wakes = {n.channel: threading.Event() for n in notifiers}
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True,
                                          name=f"dispatch-{n.channel.lower()}") for n in notifiers]
        for thread in self._threads:
            thread.start()

    def wake(self) -> None:
        """New deliveries were committed: look now instead of at the next poll."""
        for event in self._wakes.values():
            event.set()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no delivery is pending (in this database), or `timeout` passes; True when idle."""
        deadline = time.monotonic() + timeout
        while True:
            with self.engine.connect() as conn:
                if store.count_pending_deliveries(conn) == 0:
                    return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)

    def close(self, timeout: float = 15.0) -> None:
        """Finish the attempts in hand, record them, give up the leases; at most `timeout` seconds."""
        self._stopping.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, notifier: Notifier) -> None:
        lease = f"dispatcher:{notifier.channel}"
        wake = self._wakes[notifier.channel]
        lease_until = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() > lease_until - self.lease_seconds / 2:  # renew at half-life
                    lease_until = self._take_lease(lease)
                    if not lease_until:
                        self._stopping.wait(min(2.0, self.lease_seconds / 4))  # someone else delivers
                        continue
                delivery = self._next(notifier.channel)
                if delivery is None:
                    wake.wait(self.poll_seconds)
                    wake.clear()
                    continue
                self._attempt(notifier, delivery)
            except Exception:  # the loop must outlive any one failure, the database's included
                log.exception("%s dispatcher loop error; retrying in 1s", notifier.channel)
                lease_until = 0.0
                self._stopping.wait(1.0)
        self._release(lease)

    def _take_lease(self, name: str) -> float:
        """Take or renew the channel's lease; the monotonic time it lasts until, or 0.0."""
        now = datetime.now(timezone.utc)
        expires = now + timedelta(seconds=self.lease_seconds)
        with write_transaction(self.engine) as conn:
            held = store.acquire_lease(conn, name, self.holder, store.precise_text(now),
                                       store.precise_text(expires), is_dead=_holder_is_dead)
        return time.monotonic() + self.lease_seconds if held else 0.0

    def _release(self, name: str) -> None:
        try:
            with write_transaction(self.engine) as conn:
                store.release_lease(conn, name, self.holder)
        except Exception:
            log.warning("could not release lease %s; it will expire by itself", name)

    def _next(self, channel: str) -> dict | None:
        with self.engine.connect() as conn:
            return store.next_delivery(conn, channel, store.precise_text(datetime.now(timezone.utc)))

    def _attempt(self, notifier: Notifier, delivery: dict) -> None:
        """One delivery attempt, then its notification_logs row and outbox update in one transaction."""
        notice = Notice(delivery["alert_id"], AlertType(delivery["notice_type"]), delivery["target_url"],
                        delivery["status_code"], delivery["response_time_ms"], delivery["error_message"],
                        delivery["timestamp"])
        retry_count = delivery["attempts"]
        attempted_at = store.now_text()
        subject = f"{notifier.channel} {notice.notice_type.value} for alert {notice.alert_id}"
        log_row = {"alert_id": notice.alert_id, "channel": notifier.channel, "notice_type": notice.notice_type.value,
                   "retry_count": retry_count, "attempted_at": attempted_at}
        outbox = {"attempts": retry_count + 1}
        try:
            message_id = _send(notifier, notice)
        except DeliveryError as exc:
            log_row.update(status="FAILED", response_code=exc.response_code, error_message=exc.reason)
            if retry_count >= self.retries:
                outbox.update(status="FAILED", finished_at=attempted_at)
                log.error("%s FAILED after %s: %s", subject, plural(retry_count + 1, "attempt"), exc.reason)
            else:
                delay = backoff_seconds(retry_count + 1, self.backoff_base_seconds)
                if exc.retry_after_seconds:
                    delay = max(delay, min(exc.retry_after_seconds, MAX_RETRY_AFTER_SECONDS))
                outbox["next_attempt_at"] = store.precise_text(datetime.now(timezone.utc) + timedelta(seconds=delay))
                log.warning("%s attempt %d/%d failed: %s; retrying in %.1fs", subject, retry_count + 1,
                            self.retries + 1, exc.reason, delay)
        else:
            log_row.update(status="SENT", message_id=message_id,
                           response_code=200 if message_id is not None else None)
            outbox.update(status="SENT", finished_at=attempted_at)
            log.info("%s sent (attempt %d)", subject, retry_count + 1)
        with write_transaction(self.engine) as conn:
            store.insert_notification_log(conn, log_row)
            store.update_delivery(conn, delivery["id"], outbox)


def _send(notifier: Notifier, notice: Notice) -> str | None:
    """Call the channel; a bug in it is still one failed attempt, recorded like any other."""
    try:
        return notifier.send(notice)
    except DeliveryError:
        raise
    except Exception as exc:
        log.exception("%s raised unexpectedly", notifier.channel)
        raise DeliveryError(f"unexpected error: {exc.__class__.__name__}") from exc


def _holder_is_dead(holder: str) -> bool:
    """Whether a lease holder was a process on this machine that no longer exists (a kill -9)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
