"""The alert rules of SPEC §5 on their own: pure functions, no Flask, no database."""

from __future__ import annotations

import pytest

from backend.rules import (Action, AlertStatus, TargetState, can_transition, decide, decide_late,
                           failures_in_a_row, is_agent_verdict, is_failure, next_state)

OPEN, NOTHING, RESOLVE = Action.OPEN_ALERT, Action.NOTHING, Action.RESOLVE_ALERT


@pytest.mark.parametrize("failures_in_a_row, has_active_alert, failed, threshold, expected", [
    # threshold 1: the first failure opens an alert
    (0, False, True, 1, OPEN),
    # threshold 3: the third failure in a row opens, not the first or second
    (0, False, True, 3, NOTHING),
    (1, False, True, 3, NOTHING),
    (2, False, True, 3, OPEN),
    # past the threshold with no active alert (e.g. resolved by hand), a failure opens one again
    (5, False, True, 3, OPEN),
    # dedup: while an alert is active, failures create nothing, however many
    (3, True, True, 3, NOTHING),
    (1, True, True, 1, NOTHING),
    (500, True, True, 3, NOTHING),
    # recovery: a success while an alert is active resolves it
    (3, True, False, 3, RESOLVE),
    (0, True, False, 1, RESOLVE),
    # a success with no active alert does nothing
    (0, False, False, 3, NOTHING),
    (2, False, False, 3, NOTHING),
    (0, False, False, 1, NOTHING),
], ids=lambda v: repr(v))
def test_decide_follows_the_alert_rules(failures_in_a_row, has_active_alert, failed, threshold, expected):
    assert decide(TargetState(failures_in_a_row, has_active_alert), failed, threshold) is expected


@pytest.mark.parametrize("is_success, status_code, expected", [
    (True, 200, False),
    (True, 204, False),
    (True, 301, False),
    (True, 399, False),
    (False, 200, True),    # the check says it failed
    (False, None, True),
    (True, None, True),    # no status at all: timeout or network error
    (True, 400, True),     # an HTTP error status fails whatever is_success says
    (True, 404, True),
    (True, 503, True),
    (True, 599, True),
    (False, 503, True),
])
def test_is_failure_reads_is_success_and_the_status_code(is_success, status_code, expected):
    assert is_failure(is_success, status_code, agent_verdict=False) is expected


@pytest.mark.parametrize("is_success, status_code, expected", [
    (True, None, False),   # a tcp connection made: no status, a success
    (False, None, True),   # refused or timed out
    (True, 404, False),    # an http target whose expect_status lists 404
    (True, 503, False),
    (False, 200, True),    # a body condition failed
])
def test_is_failure_takes_the_agents_verdict_alone_when_it_judged_the_check(is_success, status_code, expected):
    """SPEC §9: for a file target (or a tcp check) the agent's is_success is the verdict."""
    assert is_failure(is_success, status_code, agent_verdict=True) is expected


@pytest.mark.parametrize("in_file, target_url, expected", [
    (True, "https://shop.example/health", True),   # an event resolved to a file target (by name or URL)
    (False, "tcp://db.example:5432", True),
    (True, "tcp://db.example:5432", True),
    (False, "https://t.example/", False),          # a target not in the file: §5's rule
    (False, "http://tcp.example/tcp://x", False),
])
def test_the_agent_judges_file_targets_and_tcp_checks(in_file, target_url, expected):
    assert is_agent_verdict(in_file, target_url) is expected


S = AlertStatus


@pytest.mark.parametrize("current, requested, allowed", [
    (S.OPEN, S.ACK, True),
    (S.OPEN, S.RESOLVED, True),
    (S.ACK, S.RESOLVED, True),
    (S.ACK, S.ACK, True),          # a no-op
    (S.OPEN, S.OPEN, False),
    (S.ACK, S.OPEN, False),
    (S.RESOLVED, S.OPEN, False),
    (S.RESOLVED, S.ACK, False),
    (S.RESOLVED, S.RESOLVED, False),
])
def test_can_transition_allows_only_the_spec_transitions(current, requested, allowed):
    assert can_transition(current, requested) is allowed


def _replay(state: TargetState, results: list[bool], threshold: int) -> list[Action]:
    """Judge each result (True = failed) in turn, as the service does; return every action."""
    actions = []
    for failed in results:
        action = decide(state, failed, threshold)
        state = next_state(state, failed, action)
        actions.append(action)
    return actions


FAIL, PASS = True, False  # whether a check failed


def test_timeline_opens_once_dedups_resolves_and_opens_again():
    """Gatus' TestHandleAlerting style: the expected action after every single step."""
    threshold = 3
    state = TargetState(0, False)
    steps = [
        (FAIL, NOTHING, TargetState(1, False)),
        (FAIL, NOTHING, TargetState(2, False)),
        (FAIL, OPEN, TargetState(3, True)),       # the third failure in a row opens the alert
        (FAIL, NOTHING, TargetState(4, True)),    # dedup
        (PASS, RESOLVE, TargetState(0, False)),  # recovery
        (FAIL, NOTHING, TargetState(1, False)),   # the count starts again from zero
        (FAIL, NOTHING, TargetState(2, False)),
        (PASS, NOTHING, TargetState(0, False)),  # a success with no alert only resets the count
        (FAIL, NOTHING, TargetState(1, False)),
        (FAIL, NOTHING, TargetState(2, False)),
        (FAIL, OPEN, TargetState(3, True)),       # a new outage, a new alert
        (PASS, RESOLVE, TargetState(0, False)),
        (PASS, NOTHING, TargetState(0, False)),
    ]
    for number, (failed, expected_action, expected_state) in enumerate(steps, start=1):
        action = decide(state, failed, threshold)
        assert action is expected_action, f"step {number}"
        state = next_state(state, failed, action)
        assert state == expected_state, f"step {number}"


def test_timeline_of_a_tcp_target_judged_by_the_agent():
    """Connections made (no status) are successes; refused ones open the alert at the threshold."""
    threshold, state = 2, TargetState(0, False)
    verdict = is_agent_verdict(False, "tcp://db.example:5432")
    steps = [  # (is_success, status_code, action, state after)
        (True, None, NOTHING, TargetState(0, False)),
        (True, None, NOTHING, TargetState(0, False)),
        (False, None, NOTHING, TargetState(1, False)),
        (True, None, NOTHING, TargetState(0, False)),   # a success resets the count
        (False, None, NOTHING, TargetState(1, False)),
        (False, None, OPEN, TargetState(2, True)),
        (False, None, NOTHING, TargetState(3, True)),
        (True, None, RESOLVE, TargetState(0, False)),
    ]
    for number, (is_success, status_code, expected_action, expected_state) in enumerate(steps, start=1):
        failed = is_failure(is_success, status_code, verdict)
        action = decide(state, failed, threshold)
        assert action is expected_action, f"step {number}"
        state = next_state(state, failed, action)
        assert state == expected_state, f"step {number}"


def test_spec_example_timeline_with_threshold_one():
    """SPEC §5: success, failure, failure, success -> one alert opened by event 2, resolved by event 4."""
    assert _replay(TargetState(0, False), [PASS, FAIL, FAIL, PASS], threshold=1) == [NOTHING, OPEN, NOTHING, RESOLVE]


def test_a_long_outage_opens_exactly_one_alert():
    actions = _replay(TargetState(0, False), [FAIL] * 50, threshold=3)
    assert actions.count(OPEN) == 1
    assert actions.index(OPEN) == 2


def test_two_targets_are_independent():
    """Each target keeps its own state: one's failures neither open nor block the other's alert."""
    threshold = 2
    states = {"a": TargetState(0, False), "b": TargetState(0, False)}
    timeline = [("a", FAIL, NOTHING), ("b", FAIL, NOTHING), ("a", FAIL, OPEN), ("b", PASS, NOTHING),
                ("b", FAIL, NOTHING), ("a", FAIL, NOTHING), ("b", FAIL, OPEN), ("a", PASS, RESOLVE),
                ("b", FAIL, NOTHING), ("b", PASS, RESOLVE)]
    for number, (target, failed, expected) in enumerate(timeline, start=1):
        action = decide(states[target], failed, threshold)
        assert action is expected, f"step {number} ({target})"
        states[target] = next_state(states[target], failed, action)


@pytest.mark.parametrize("results, expected", [
    ([], 0),
    ([True, True, False, True], 2),
    ([False, True, True], 0),
    ([True, True, True], 3),
])
def test_failures_in_a_row_counts_back_to_the_latest_success(results, expected):
    assert failures_in_a_row(results) == expected


@pytest.mark.parametrize("has_active, failed, failures_now, expected", [
    (False, True, 3, Action.OPEN_ALERT),   # the late failure completes an outage in check-time order
    (False, True, 2, Action.NOTHING),      # not yet at the threshold
    (False, True, 0, Action.NOTHING),      # a newer success says the target is up now
    (True, True, 5, Action.NOTHING),       # dedup: already alerting
    (True, False, 0, Action.NOTHING),      # a late success never resolves: a newer check failed
    (False, False, 0, Action.NOTHING),
])
def test_a_late_result_can_complete_an_outage_but_never_resolve_one(has_active, failed, failures_now, expected):
    assert decide_late(has_active, failed, failures_now, threshold=3) is expected
