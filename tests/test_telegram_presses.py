"""Two-way Telegram (SPEC §10) with the real backend process and the local fake Bot API.

A press on a message's ACK / Resolve button reaches the backend through getUpdates (long-polled by one
process at a time, its offset stored in the database); the assertions read the real database and what
the fake received: answers, edits, and every getUpdates call.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest

from backend.telegram_updates import LEASE_RETRY_SECONDS
from tests.support.procs import Backend, assert_no_secret_in_any_file, wait_until

BOT_TOKEN = "515151:two-way-bot-token-SECRET"
CHAT = "777"


@pytest.fixture
def backends(tmp_path, telegram):
    """Make backends on one database with Telegram pointed at the fake; each is stopped by PID at teardown."""
    made: list[Backend] = []

    def make(**env: str) -> Backend:
        settings = {"FAILURE_THRESHOLD": "1", "TELEGRAM_BOT_TOKEN": BOT_TOKEN, "TELEGRAM_CHAT_ID": CHAT,
                    "TELEGRAM_API_BASE_URL": telegram.base_url, "NOTIFY_LANGUAGE": "en", **env}
        made.append(Backend(tmp_path, **settings))
        return made[-1]

    yield make
    for backend in made:
        backend.stop()


def post_check(backend: Backend, url: str, ok: bool) -> dict | None:
    """POST one check result; the alert it opened or resolved, if any."""
    body = {"target_url": url, "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "is_success": ok, "status_code": 200 if ok else 503, "response_time_ms": 40,
            "event_uid": str(uuid.uuid4())}
    answer = backend.api("POST", "/events", json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()["alert"]


def sent_for(telegram, url: str, count: int = 1) -> list[dict]:
    """The messages sent about `url`, once `count` of them have arrived."""
    def sent():
        messages = [m for m in telegram.sent_messages() if f"URL: {url}" in m["text"]]
        return messages if len(messages) >= count else None
    return wait_until(sent, 10, message=f"{count} Telegram message(s) about {url}")


def logged(backend: Backend, message: dict) -> dict:
    """`message`, once its SENT row is committed: a press in the milliseconds before matches no delivery yet."""
    wait_until(lambda: backend.rows("SELECT 1 FROM notification_logs WHERE status = 'SENT' AND chat_id = ? AND "
                                    "message_id = ?", CHAT, str(message["message_id"])), 10, message="the SENT row")
    return message


def button_data(message: dict) -> dict[str, str]:
    """The message's buttons now, label -> callback_data."""
    markup = message.get("reply_markup") or {"inline_keyboard": []}
    return {button["text"]: button["callback_data"] for row in markup["inline_keyboard"] for button in row}


def answer_to(telegram, update_id: int) -> dict:
    """The answerCallbackQuery of the press `update_id`, once made."""
    return wait_until(lambda: next((a for a in list(telegram.answers) if a["callback_query_id"] == f"cb{update_id}"),
                                   None), 15, message=f"the answer to press {update_id}")


def alert_row(backend: Backend, alert_id: int) -> tuple:
    return backend.rows("SELECT status, acknowledged_by, resolved_by FROM alerts WHERE id = ?", alert_id)[0]


def test_ack_then_resolve_from_the_chat_edits_the_message_to_say_who_and_when(backends, telegram, tmp_path):
    backend = backends().start()
    alert = post_check(backend, "https://shop.example/", ok=False)
    message = logged(backend, sent_for(telegram, "https://shop.example/")[0])
    original = message["text"]
    assert button_data(message) == {"ACK": f"ack:{alert['id']}", "Resolve": f"res:{alert['id']}"}

    acked = telegram.press(message, f"ack:{alert['id']}")
    assert answer_to(telegram, acked)["text"] == "Acknowledged"
    assert alert_row(backend, alert["id"]) == ("ACK", "telegram:@alice", None)
    [edit] = wait_until(lambda: list(telegram.edits), 10, message="the message edited")
    [(acknowledged_at,)] = backend.rows("SELECT acknowledged_at FROM alerts WHERE id = ?", alert["id"])
    assert edit["text"] == f"{original}\n☑️ Acknowledged by @alice at {acknowledged_at} UTC"
    assert (edit["chat_id"], edit["message_id"]) == (CHAT, str(message["message_id"]))
    [message] = sent_for(telegram, "https://shop.example/")  # as it reads now, edited
    assert button_data(message) == {"Resolve": f"res:{alert['id']}"}  # after ACK, only Resolve

    # Someone with no username resolves it: named by id.
    resolved = telegram.press(message, button_data(message)["Resolve"], user_id=9001, username=None)
    assert answer_to(telegram, resolved)["text"] == "Resolved"
    assert alert_row(backend, alert["id"]) == ("RESOLVED", "telegram:@alice", "telegram:9001")
    wait_until(lambda: len(telegram.edits) == 2, 10, message="the second edit")
    [message] = sent_for(telegram, "https://shop.example/")
    assert message["text"].startswith(f"{original}\n☑️ Acknowledged by @alice")
    assert "\n✔️ Resolved by 9001 at " in message["text"] and button_data(message) == {}  # after Resolve: none

    again = telegram.press(message, f"res:{alert['id']}")
    assert answer_to(telegram, again)["text"] == "Already resolved"
    assert len(telegram.edits) == 2

    # A recovery carries no buttons.
    post_check(backend, "https://api.example/", ok=False)
    post_check(backend, "https://api.example/", ok=True)
    down, up = sent_for(telegram, "https://api.example/", count=2)
    assert button_data(down) and up["reply_markup"] is None
    assert_no_secret_in_any_file(tmp_path, BOT_TOKEN)


def test_a_press_from_another_chat_or_on_another_message_is_refused(backends, telegram):
    backend = backends().start()
    first = post_check(backend, "https://shop.example/", ok=False)
    second = post_check(backend, "https://api.example/", ok=False)
    shop = logged(backend, sent_for(telegram, "https://shop.example/")[0])
    api = logged(backend, sent_for(telegram, "https://api.example/")[0])

    presses = [
        telegram.press(shop, f"ack:{first['id']}", chat_id=-100999),  # the same message id, another chat
        telegram.press(api, f"res:{first['id']}"),  # this chat, but the message is another alert's
        telegram.press({"message_id": 1, "chat_id": CHAT}, f"ack:{first['id']}"),  # a message never sent
        telegram.press(shop, "ack:first"),  # data no button of ours carries
    ]
    for update_id in presses:
        assert answer_to(telegram, update_id)["text"] == "Only this alert's own message in the chat it was sent to " \
                                                         "can change it"
    assert alert_row(backend, first["id"]) == ("OPEN", None, None)
    assert alert_row(backend, second["id"]) == ("OPEN", None, None)
    assert telegram.edits == []
    assert "Telegram press refused" in backend.log_text()


def test_the_offset_is_stored_so_a_restart_neither_replays_nor_loses_a_press(backends, telegram):
    backend = backends().start()
    alert = post_check(backend, "https://shop.example/", ok=False)
    message = logged(backend, sent_for(telegram, "https://shop.example/")[0])
    acked = telegram.press(message, f"ack:{alert['id']}")
    answer_to(telegram, acked)
    backend.stop()

    resolved = telegram.press(message, f"res:{alert['id']}")  # pressed while no backend runs
    polls_before = len(telegram.polls)
    backend.start()
    answer_to(telegram, resolved)
    assert alert_row(backend, alert["id"]) == ("RESOLVED", "telegram:@alice", "telegram:@alice")
    # After the restart, getUpdates was asked from the stored offset, past the ACK, never from the start.
    assert [p["offset"] for p in telegram.polls[polls_before:] if p["offset"] <= acked] == []
    assert [a["callback_query_id"] for a in telegram.answers] == [f"cb{acked}", f"cb{resolved}"]  # each once
    wait_until(lambda: backend.rows("SELECT next_update_id FROM telegram_offset") == [(resolved + 1,)], 5,
               message="the stored offset past the last press")


def test_two_backends_on_one_database_poll_one_at_a_time_and_hand_over(backends, telegram):
    first, second = backends().start(), backends().start()
    alert = post_check(first, "https://shop.example/", ok=False)
    message = logged(first, sent_for(telegram, "https://shop.example/")[0])
    # A window in which each process, holding the lease or not, has asked for it: without the lease
    # both would be in a (10 s) poll by its end.
    time.sleep(LEASE_RETRY_SECONDS + 0.5)
    assert telegram.polls_at_once_max == 1
    acked = telegram.press(message, f"ack:{alert['id']}")
    answer_to(telegram, acked)

    [(holder,)] = first.rows("SELECT holder FROM leases WHERE name = 'telegram-updates'")
    polling, other = (first, second) if holder.rsplit(":", 4)[2] == str(first.proc.pid) else (second, first)
    polling.stop()  # the poller gives the lease up; the other process takes over
    resolved = telegram.press(message, f"res:{alert['id']}")
    answer_to(telegram, resolved)
    assert alert_row(other, alert["id"]) == ("RESOLVED", "telegram:@alice", "telegram:@alice")
    assert telegram.polls_at_once_max == 1  # not during the handover either
    assert [a["callback_query_id"] for a in telegram.answers] == [f"cb{acked}", f"cb{resolved}"]
