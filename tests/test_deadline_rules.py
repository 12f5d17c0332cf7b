"""When silence is an outage (backend/deadline_rules.py): windows, deadlines across restarts, messages; pure, no database."""

from datetime import datetime, timedelta, timezone

import pytest

from backend.deadline_rules import deadline_uid, due_at, humanise, missed_check_at, silence_message, watch_of

T0 = datetime(2026, 12, 1, 12, 0, 0, tzinfo=timezone.utc)
PUSH = watch_of("backup", "push", "push://backup", {"period": 86400, "grace": 3600}, T0, T0, 60)
HTTP = watch_of("shop", "http", "https://shop.example/", {"interval": 30, "timeout": 5}, T0, T0, 60)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize("seconds, text", [
    (0.6, "0.6 s"), (2.5, "2.5 s"), (9.96, "10 s"), (95, "95 s"), (119, "119 s"), (120, "2 min"),
    (5400, "90 min"), (90000, "25h"), (47 * 3600, "47h"), (3 * 86400, "3d"),
])
def test_durations_read_as_people_say_them(seconds, text):
    assert humanise(seconds) == text


@pytest.mark.parametrize("watch, last, resumed, due", [
    # push: period + grace after the first load, then after the last ping
    (PUSH, None, None, at(90000)),
    (PUSH, at(1000), None, at(91000)),
    # a ping from before the target's first load (a removed target re-added) does not count
    (PUSH, at(-5000), None, at(90000)),
    # the backend restarted at 95000 s, after the deadline: at least restart + grace
    (PUSH, at(1000), at(95000), at(98600)),
    # restarted well before the deadline: the deadline stands
    (PUSH, at(1000), at(2000), at(91000)),
    # http: 3 x interval + timeout after the last result; before the first, after load + AGENT_REFRESH_SECONDS
    (HTTP, at(500), None, at(595)),
    (HTTP, None, None, at(155)),
    # after a restart: refresh + one window for agents to find the backend and flush their spool
    (HTTP, at(500), at(1000), at(1155)),
])
def test_deadlines_count_from_the_last_result_and_never_before_a_restart_allows(watch, last, resumed, due):
    assert due_at(watch, last, resumed) == due


def test_a_missed_deadline_is_the_next_ones_start_and_its_message_says_how_long():
    first = due_at(PUSH, at(1000), None)
    assert silence_message(PUSH, first, at(1000)) == "no ping for 25h"
    # The missed deadline's own failed event is the newest result: the next deadline counts from it.
    assert due_at(PUSH, first, None) == first + timedelta(hours=25)
    assert silence_message(HTTP, at(595), at(500)) == "no results for 95 s"
    assert silence_message(HTTP, at(155), None) == "no results for 3 min"  # 155 s since its load


def test_one_deadline_has_one_uid_in_every_process():
    assert deadline_uid("backup", "2026-12-02 13:00:00.000") == deadline_uid("backup", "2026-12-02 13:00:00.000")
    assert deadline_uid("backup", "2026-12-02 13:00:00.000") != deadline_uid("backup", "2026-12-03 14:00:00.000")
    assert deadline_uid("backup", "2026-12-02 13:00:00.000") != deadline_uid("other", "2026-12-02 13:00:00.000")


def test_a_missed_deadline_is_stamped_in_the_targets_own_check_times():
    # An agent 120 s behind: its check at 380 s arrived at 500 s; the deadline 95 s after the arrival
    # is stamped 95 s after the check, before the agent's next check (in order, not late).
    assert missed_check_at(at(595), at(500), at(380)) == at(475)
    assert missed_check_at(at(155), None, None) == at(155)  # nothing heard yet: the backend's own time
