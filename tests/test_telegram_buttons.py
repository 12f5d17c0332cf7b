"""Telegram's ACK / Resolve buttons as pure functions (SPEC §10): which buttons, their data, a press's outcome."""

import pytest

from backend.notifiers.telegram_buttons import (ACK, RESOLVE, Outcome, acted_line, buttons, callback_data,
                                                decide_press, notice_buttons, parse_press, press_answer, who_pressed)
from backend.rules import AlertStatus, AlertType


@pytest.mark.parametrize("notice_type, status, labels", [
    (AlertType.ERROR, None, ["ACK", "Resolve"]),
    (AlertType.ERROR, "OPEN", ["ACK", "Resolve"]),
    (AlertType.WARNING, "OPEN", ["ACK", "Resolve"]),
    (AlertType.ERROR, "ACK", ["Resolve"]),  # acknowledged before the message went out
    (AlertType.ERROR, "RESOLVED", []),
    (AlertType.RECOVERY, "RESOLVED", []),
])
def test_errors_and_warnings_carry_the_buttons_their_alert_status_allows(notice_type, status, labels):
    assert [label for label, _ in notice_buttons(7, notice_type, status)] == labels


def test_callback_data_names_the_action_and_the_alert_and_reads_back():
    assert buttons(12, AlertStatus.OPEN) == [("ACK", "ack:12"), ("Resolve", "res:12")]
    largest = callback_data(2**63 - 1, RESOLVE)
    assert len(largest.encode()) <= 64  # Telegram's limit on callback_data
    assert parse_press(largest).alert_id == 2**63 - 1 and parse_press("ack:12").action == ACK


@pytest.mark.parametrize("data", [None, "", "ack", "ack:", "ack:0", "ack:012", "del:12", "ack:12 ", "ack:1:2",
                                  "ack:" + "9" * 20])
def test_data_no_button_of_ours_carries_is_no_press(data):
    assert parse_press(data) is None


@pytest.mark.parametrize("status, action, outcome", [
    (AlertStatus.OPEN, ACK, Outcome(AlertStatus.ACK, "acknowledged")),
    (AlertStatus.OPEN, RESOLVE, Outcome(AlertStatus.RESOLVED, "resolved")),
    (AlertStatus.ACK, RESOLVE, Outcome(AlertStatus.RESOLVED, "resolved")),
    (AlertStatus.ACK, ACK, Outcome(None, "already_acknowledged")),
    (AlertStatus.RESOLVED, ACK, Outcome(None, "already_resolved")),
    (AlertStatus.RESOLVED, RESOLVE, Outcome(None, "already_resolved")),
])
def test_a_press_follows_the_alert_transitions(status, action, outcome):
    assert decide_press(status, action) == outcome


def test_a_timeline_of_presses_ack_then_resolve_then_resolve_again():
    status, said = AlertStatus.OPEN, []
    for action in (ACK, ACK, RESOLVE, RESOLVE):
        outcome = decide_press(status, action)
        status = outcome.new_status or status
        said.append((outcome.result, [label for label, _ in buttons(1, status)]))
    assert said == [("acknowledged", ["Resolve"]), ("already_acknowledged", ["Resolve"]), ("resolved", []),
                    ("already_resolved", [])]


def test_who_pressed_is_the_username_or_else_the_user_id():
    assert who_pressed(4242, "alice") == "telegram:@alice"
    assert who_pressed(4242, None) == "telegram:4242"


@pytest.mark.parametrize("language, result, line", [
    ("en", "acknowledged", "☑️ Acknowledged by @alice at 2026-12-01 10:00:00 UTC"),
    ("en", "resolved", "✔️ Resolved by @alice at 2026-12-01 10:00:00 UTC"),
    ("ko", "acknowledged", "☑️ @alice 님이 확인함 (2026-12-01 10:00:00 UTC)"),
    ("ko", "resolved", "✔️ @alice 님이 해결함 (2026-12-01 10:00:00 UTC)"),
])
def test_the_added_line_says_who_did_what_and_when(language, result, line):
    assert acted_line(result, "telegram:@alice", "2026-12-01 10:00:00", language) == line


@pytest.mark.parametrize("language", ["ko", "en"])
def test_every_answer_fits_telegrams_200_characters(language):
    for result in ("acknowledged", "resolved", "already_acknowledged", "already_resolved", "refused"):
        assert 0 < len(press_answer(result, language)) <= 200
