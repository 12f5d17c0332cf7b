"""Notices while a target is silenced (SPEC §11): kept as SUPPRESSED rows, and sent when the silence ends.

Ingest (and so the deadline timer, which stores through it) hands its outbox rows to
`queue_deliveries`: unless a silence or maintenance window covers the target, they go to the
outbox as before; if one does, each becomes a notification_logs row with status SUPPRESSED naming
what suppressed it, and no delivery. An ERROR or WARNING row also remembers when the silence ends
(`release_at`); the deadline timer's pass calls `release_ended`, which claims each such row whose
time has come with a conditional UPDATE (so it is handled once, across restarts and processes)
and queues the notice then if its alert is still OPEN. A RECOVERY suppressed during the silence
is never sent later, nor is the notice of an alert acknowledged or resolved meanwhile.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine

from backend import metrics, store, store_silences
from backend.after_commit import AfterCommit
from backend.database import write_transaction
from backend.silences import QuietTimes
from backend.time_text import precise_text, utc_text

log = logging.getLogger(__name__)

# Notices of an alert that may still be open when the silence ends (a REMINDER is never suppressed: it is skipped).
RELEASED_TYPES = ("ERROR", "WARNING", "ESCALATION")


def queue_deliveries(conn: Connection, target: str, rows: list[dict], quiet: QuietTimes | None = None,
                     after: AfterCommit | None = None) -> None:
    """Queue a notice's outbox rows, or, while `target` is silenced, record them as SUPPRESSED instead.

    `quiet`: the silences and windows already read in this transaction (an ingest batch reads them once).
    `after`: where the suppression is logged and counted (an ingest batch's, once committed); else at once.
    """
    if not rows:
        return
    now = datetime.now(timezone.utc)
    silence = (quiet or QuietTimes(conn, now)).silence_for(target, now)  # only when a notice is due
    if silence is None:
        store.insert_deliveries(conn, rows)
        return
    attempted_at = utc_text(now)
    store_silences.insert_suppressed(conn, [
        {"alert_id": row["alert_id"], "channel": row["channel"], "notice_type": row["notice_type"],
         "status": "SUPPRESSED", "attempted_at": attempted_at, "retry_count": 0,
         "suppressed_by": silence["suppressed_by"], "silence_id": silence["silence_id"],
         "release_at": silence["ends_at"] if row["notice_type"] in RELEASED_TYPES else None}
        for row in rows])
    after = after if after is not None else AfterCommit(log, hold=False)
    after.then(metrics.notices_suppressed, rows)
    after.then(log.info, "%s for alert %d of %s suppressed by %s until %s: %s", rows[0]["notice_type"],
               rows[0]["alert_id"], target, silence["suppressed_by"], silence["ends_at"][:19],
               ", ".join(row["channel"] for row in rows))


def release_ended(engine: Engine, channels: list[str], now: datetime | None = None) -> int:
    """Queue the suppressed notices whose silence has ended, for alerts still OPEN; how many were queued."""
    now = now or datetime.now(timezone.utc)
    with engine.connect() as conn:  # a plain read first: most ticks find nothing, and take no write lock
        due = store_silences.due_suppressed(conn, precise_text(now))
    queued = 0
    for row in due:
        # One transaction per notice, its alert locked first (FOR UPDATE): an ACK or resolve in flight
        # is waited for and then seen, and no transaction here holds two alerts at once.
        with write_transaction(engine) as conn:
            status = store_silences.lock_alert_status(conn, row["alert_id"])
            if not store_silences.claim_suppressed(conn, row["id"]):
                continue  # another process handled it
            if status != "OPEN" or row["channel"] not in channels:
                why = (f"the alert is {status}" if row["channel"] in channels
                       else f"channel {row['channel']} is not configured")
                log.info("silence over for alert %d of %s: %s %s not sent, %s", row["alert_id"], row["target"],
                         row["channel"], row["notice_type"], why)
                continue
            queue_deliveries(conn, row["target"], [{
                "alert_id": row["alert_id"], "event_id": row["event_id"], "channel": row["channel"],
                "notice_type": row["notice_type"], "status": "PENDING", "attempts": 0,
                "next_attempt_at": precise_text(now), "created_at": utc_text(now)}])
            queued += 1
    if queued:
        log.info("silence over: %d suppressed notice(s) of alerts still open queued", queued)
    return queued
