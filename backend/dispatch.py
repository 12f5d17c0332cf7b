"""The outbox dispatcher: delivers queued notices with retries, one notification_logs row per attempt.

POST /events never delivers anything itself. Its transaction writes the alert change and one
`deliveries` row per channel; this dispatcher delivers those rows afterwards. Each channel has its
own worker thread, so a slow Telegram never holds up the console, and a named lease in the
database makes one backend process at a time work each channel. The lease keeps order and spares
work; what makes a row go out once is the claim: before an attempt, a conditional UPDATE moves the
row's `next_attempt_at` past the attempt and names the claimer, and only the process whose UPDATE
changed the row sends it. A process that dies mid-delivery leaves the row PENDING and claimed; its
claim expires (at once, for a dead process on this machine) and the next holder delivers it (at
least once: a message that went out just before a kill -9 may go out again).
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import Engine

from backend import metrics, store, store_channels
from backend.database import write_transaction
from backend.leases import Lease, holder_is_dead
from backend.messages import Notice
from backend.notifiers.base import DeliveryError, Notifier, Receipt
from backend.peer_wake import PeerWake
from backend.rules import AlertType, WarningReason
from backend.time_text import now_text, precise_text
from common.logs import plural

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_SECONDS = 300.0  # a channel asking for a longer pause gets this one


def backoff_seconds(retry_number: int, base_seconds: float, jitter: float | None = None) -> float:
    """Wait before retry `retry_number` (1, 2, 3…): base, 2×base, 4×base, plus up to 10% jitter."""
    delay = base_seconds * 2 ** (retry_number - 1)
    return delay + (random.uniform(0, delay * 0.1) if jitter is None else jitter)


def fail_deliveries_of_removed_channels(engine: Engine, channels: list[str]) -> int:
    """End as FAILED, with a notification_logs row saying why, what waits for a channel not configured.

    At start, and when a reload drops a named channel; `channels` are the defaults, the file's named ones are added.

    Otherwise such notices would wait for ever and all go out at once if the channel came back.
    """
    with write_transaction(engine) as conn:
        # The file's named channels are configured too; read under the targets file's share lock, so a
        # reload adding a channel (and the notices queued for it) is either wholly seen or not yet made.
        store.share_targets_file(conn)
        channels = [*channels, *store_channels.loaded_channels(conn)[1]]
        failed = 0
        for delivery in store.pending_deliveries_outside(conn, channels):
            now = now_text()
            if not store.finish_delivery(conn, delivery["id"], "FAILED", now):
                continue  # another process starting at the same time ended it
            reason = f"channel {delivery['channel']} is not configured"
            store.insert_notification_log(conn, {
                "alert_id": delivery["alert_id"], "channel": delivery["channel"],
                "notice_type": delivery["notice_type"], "status": "FAILED", "attempted_at": now,
                "retry_count": delivery["attempts"], "error_message": reason})
            log.error("%s %s for alert %d FAILED: %s", delivery["channel"], delivery["notice_type"],
                      delivery["alert_id"], reason)
            metrics.notification_attempt(delivery["channel"], "FAILED")
            failed += 1
    return failed


class Dispatcher:
    """Delivers the outbox on every enabled channel, off the request path (SPEC §6)."""

    def __init__(self, engine: Engine, notifiers: list[Notifier], retries: int = 3,
                 backoff_base_seconds: float = 1.0, poll_seconds: float = 0.2, lease_seconds: float = 30.0):
        self.engine = engine
        self.retries = retries
        self.backoff_base_seconds = backoff_base_seconds
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self._notifiers: dict[str, Notifier] = {}  # by channel; a worker reads its channel's before each attempt
        self._wakes: dict[str, threading.Event] = {}
        self._stops: dict[str, threading.Event] = {}  # one channel's end (removed from the targets file)
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._change = threading.Lock()
        self._peers: PeerWake | None = None  # the other workers of this gunicorn master (peer_wake.py)
        self.set_channels(notifiers)

    @property
    def notifiers(self) -> list[Notifier]:
        """The channels this dispatcher delivers now."""
        return list(self._notifiers.values())

    def set_channels(self, notifiers: list[Notifier]) -> None:
        """Deliver exactly these channels from now on: start new ones, swap changed ones, end removed ones.

        A removed channel's worker finishes the attempt in hand and gives up its lease (SPEC §10 reload).
        """
        with self._change:
            wanted = {n.channel: n for n in notifiers}
            for channel in [c for c in self._notifiers if c not in wanted]:
                del self._notifiers[channel]
                self._stops.pop(channel).set()
                self._wakes.pop(channel).set()
            for channel, notifier in wanted.items():
                started = channel in self._notifiers
                self._notifiers[channel] = notifier
                if started:
                    continue
                # A lease (holder) of its own: a removed channel's worker, still ending its attempt, keeps
                # the channel until it gives up its lease, and cannot give up this one's.
                lease = Lease(self.engine, f"dispatcher:{channel}", self.lease_seconds)
                self._wakes[channel], self._stops[channel] = threading.Event(), threading.Event()
                thread = threading.Thread(target=self._run, args=(channel, self._stops[channel], lease), daemon=True,
                                          name=f"dispatch-{channel.lower()}")
                self._threads.append(thread)
                thread.start()

    def wake(self) -> None:
        """New deliveries were committed: look now instead of at the next poll, here and in the other workers."""
        self.wake_here()
        if self._peers is not None:
            self._peers.notify()

    def wake_here(self) -> None:
        """Look now, in this process only (another worker woke us, or we stop)."""
        for event in list(self._wakes.values()):
            event.set()

    def wake_peers_through(self, peers: PeerWake) -> None:
        """Wake the other workers' dispatchers through `peers` too, from now until close()."""
        self._peers = peers

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
        peers, self._peers = self._peers, None
        if peers is not None:
            peers.close()
        self.wake_here()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, channel: str, stop: threading.Event, lease: Lease) -> None:
        wake = self._wakes[channel]
        lease_until = 0.0
        while not self._stopping.is_set() and not stop.is_set():
            notifier = self._notifiers.get(channel)
            if notifier is None:
                break
            try:
                # Renewed at half-life, before an attempt: one attempt (at most NOTIFY_TIMEOUT_SECONDS,
                # a third of the lease) always ends while the lease is still ours.
                if time.monotonic() > lease_until - self.lease_seconds / 2:
                    lease_until = self._hold(lease, notifier.channel, fresh=not lease_until)
                    if not lease_until:
                        self._stopping.wait(min(2.0, self.lease_seconds / 4))  # someone else delivers
                        continue
                delivery = self._claim_next(notifier.channel, lease.holder)
                if delivery is None:
                    # Never past the lease's renewal time, whatever NOTIFY_POLL_SECONDS says.
                    renew_in = lease_until - self.lease_seconds / 2 - time.monotonic()
                    wake.wait(max(0.0, min(self.poll_seconds, renew_in)))
                    wake.clear()
                    continue
                self._attempt(notifier, delivery, lease.holder)
            except Exception:  # the loop must outlive any one failure, the database's included
                log.exception("%s dispatcher loop error; retrying in 1s", notifier.channel)
                lease_until = 0.0
                self._stopping.wait(1.0)
        lease.release()

    def _hold(self, lease: Lease, channel: str, fresh: bool) -> float:
        """Take or renew a channel's lease; on taking it, free the claims of holders that died."""
        lease_until = lease.take()
        if lease_until and fresh:
            with write_transaction(self.engine) as conn:
                freed = store.free_claims_of_dead(conn, channel, _now(), holder_is_dead)
            if freed:
                log.warning("%s: %d delivery(ies) claimed by a process that died are due again", channel, freed)
        return lease_until

    def _claim_next(self, channel: str, holder: str) -> dict | None:
        """The channel's next due delivery, claimed for one attempt; None when there is none to claim."""
        with self.engine.connect() as conn:
            delivery = store.next_delivery(conn, channel, _now())
        if delivery is None:
            return None
        claim_until = precise_text(datetime.now(timezone.utc) + timedelta(seconds=self.lease_seconds))
        with write_transaction(self.engine) as conn:
            if not store.claim_delivery(conn, delivery["id"], holder, _now(), claim_until):
                return None  # another dispatcher claimed it first: it sends, we look again
        return delivery

    def _attempt(self, notifier: Notifier, delivery: dict, holder: str) -> None:
        """One delivery attempt, then its notification_logs row and outbox update in one transaction."""
        # The alert's columns came as alert_<name> ("alert_id" is the delivery's own, the same id).
        alert = {key[len("alert_"):]: value for key, value in delivery.items() if key.startswith("alert_")}
        notice = Notice(delivery["alert_id"], AlertType(delivery["notice_type"]), delivery["target_url"],
                        delivery["status_code"], delivery["response_time_ms"], delivery["error_message"],
                        delivery["timestamp"], _reason(delivery["reason"]), alert["target"], alert,
                        queued_at=delivery["created_at"])
        retry_count = delivery["attempts"]
        attempted_at = now_text()
        subject = f"{notifier.channel} {notice.notice_type.value} for alert {notice.alert_id}"
        log_row = {"alert_id": notice.alert_id, "channel": notifier.channel, "notice_type": notice.notice_type.value,
                   "retry_count": retry_count, "attempted_at": attempted_at}
        outbox = {"attempts": retry_count + 1}
        try:
            sent = _send(notifier, notice)
        except DeliveryError as exc:
            log_row.update(status="FAILED", response_code=exc.response_code, error_message=exc.reason)
            if retry_count >= self.retries:
                outbox.update(status="FAILED", finished_at=attempted_at)
                log.error("%s FAILED after %s: %s", subject, plural(retry_count + 1, "attempt"), exc.reason)
            else:
                delay = backoff_seconds(retry_count + 1, self.backoff_base_seconds)
                if exc.retry_after_seconds:
                    delay = max(delay, min(exc.retry_after_seconds, MAX_RETRY_AFTER_SECONDS))
                outbox["next_attempt_at"] = precise_text(datetime.now(timezone.utc) + timedelta(seconds=delay))
                log.warning("%s attempt %d/%d failed: %s; retrying in %.1fs", subject, retry_count + 1,
                            self.retries + 1, exc.reason, delay)
        else:
            receipt = Receipt.of(sent)
            if receipt is not None:
                log_row.update(message_id=receipt.message_id, chat_id=receipt.chat_id, response_code=200)
            log_row["status"] = "SENT"
            outbox.update(status="SENT", finished_at=attempted_at)
            log.info("%s sent (attempt %d)", subject, retry_count + 1)
        with write_transaction(self.engine) as conn:
            store.insert_notification_log(conn, log_row)
            if not store.update_delivery(conn, delivery["id"], holder, outbox):
                log.error("%s: the claim on delivery %d expired during the attempt; another process may "
                          "send it again (NOTIFY_LEASE_SECONDS too short?)", subject, delivery["id"])
        metrics.notification_attempt(notifier.channel, log_row["status"])


def _reason(stored: str | None) -> WarningReason | None:
    """A WARNING's cause from alerts.reason (JSON written by ingest)."""
    return WarningReason(**json.loads(stored)) if stored else None


def _now() -> str:
    return precise_text(datetime.now(timezone.utc))


def _send(notifier: Notifier, notice: Notice) -> str | Receipt | None:
    """Call the channel; a bug in it is still one failed attempt, recorded like any other."""
    try:
        return notifier.send(notice)
    except DeliveryError:
        raise
    except Exception as exc:
        log.exception("%s raised unexpectedly", notifier.channel)
        raise DeliveryError(f"unexpected error: {exc.__class__.__name__}") from exc
