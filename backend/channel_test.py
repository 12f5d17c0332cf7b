"""A channel test (SPEC §10 `POST /channels/<name>/test`): one notice, one attempt, one notification_logs row.

A test belongs to no alert, so its row has `alert_id` NULL and `notice_type` TEST; the notice itself
is a RECOVERY for a made-up target `channel-test` (alert id 0), so nobody is paged by a test.
"""

from __future__ import annotations

import logging

from sqlalchemy import Engine

from backend import metrics, store
from backend.channels import public_channel
from backend.database import write_transaction
from backend.errors import ApiError
from backend.messages import Notice
from backend.notifiers.base import DeliveryError, Notifier, Receipt
from backend.rules import AlertType
from backend.time_text import now_text

log = logging.getLogger(__name__)

TEST_NOTICE_TYPE = "TEST"


def channel_test_notice(channel: str) -> Notice:
    """The notice a channel test sends: a recovery of the made-up target `channel-test`."""
    return Notice(0, AlertType.RECOVERY, f"test://{channel}", 200, None, None, now_text(),
                  target="channel-test")


def send_test(engine: Engine, notifier: Notifier) -> dict:
    """Send one test notice now, without retries; record and return its notification_logs row."""
    row = {"alert_id": None, "channel": notifier.channel, "notice_type": TEST_NOTICE_TYPE, "retry_count": 0,
           "attempted_at": now_text()}
    try:
        receipt = Receipt.of(notifier.send(channel_test_notice(notifier.channel)))
    except DeliveryError as exc:
        row.update(status="FAILED", response_code=exc.response_code, error_message=exc.reason)
        log.warning("%s test notice FAILED: %s", notifier.channel, exc.reason)
    except Exception as exc:  # a channel's bug is a failed test, not a 500 (nor a traceback quoting a URL)
        row.update(status="FAILED", error_message=f"unexpected error: {exc.__class__.__name__}")
        log.error("%s test notice raised %s", notifier.channel, exc.__class__.__name__)
    else:
        row["status"] = "SENT"
        if receipt is not None:
            row.update(message_id=receipt.message_id, chat_id=receipt.chat_id, response_code=200)
        log.info("%s test notice sent", notifier.channel)
    with write_transaction(engine) as conn:
        row["id"] = store.insert_notification_log(conn, row)
    metrics.notification_attempt(notifier.channel, row["status"])
    return row


def channel_list(watch) -> list[dict]:
    """The default channels that are on, then the targets file's named channels, secrets as `<redacted>` (SPEC §10)."""
    defaults, named = watch.configured()
    shown = [{"name": n.channel.lower(), "type": n.channel.lower()} for n in defaults]
    return shown + [public_channel(name, spec) for name, spec in named.items()]


def run_channel_test(engine: Engine, watch, name: str) -> dict:
    """Send a test notice through the channel `name` (send_test); ApiError 404 naming the configured ones."""
    notifier = watch.notifier(name)
    if notifier is None:
        known = [channel["name"] for channel in channel_list(watch)]
        raise ApiError(404, f"No channel is named {name!r}; configured: {', '.join(known)}.",
                       details={"channels": known})
    return send_test(engine, notifier)
