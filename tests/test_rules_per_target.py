"""The per-target rules of SPEC §9 on their own: thresholds, WARNINGs, one active alert, on a timeline."""

from __future__ import annotations

from dataclasses import replace

from backend.rules import (Action, AlertType, Check, RuleSettings, RuleState, WarningReason, judge,
                           successes_in_a_row)

NOTHING, OPEN, RESOLVE = Action.NOTHING, Action.OPEN_ALERT, Action.RESOLVE_ALERT
WARN, REPLACE = Action.OPEN_WARNING, Action.REPLACE_WARNING
ERROR, WARNING = AlertType.ERROR, AlertType.WARNING


def ok(ms: int = 100, cert_days: float | None = None) -> Check:
    return Check(False, ms, cert_days)


def down() -> Check:
    return Check(True, None)


def replay(settings: RuleSettings, steps: list[tuple[Check, Action, AlertType | None]]) -> None:
    """Judge each check in turn; the action and the active alert after every step are as expected."""
    state = RuleState()
    for number, (check, expected_action, expected_active) in enumerate(steps, start=1):
        decision = judge(state, check, settings)
        assert decision.action is expected_action, f"step {number}"
        assert decision.state.active is expected_active, f"step {number}"
        state = decision.state


def test_failure_threshold_and_success_threshold_of_the_target():
    replay(RuleSettings(failure_threshold=2, success_threshold=2), [
        (down(), NOTHING, None),
        (down(), OPEN, ERROR),
        (ok(), NOTHING, ERROR),        # one success is not yet a recovery
        (down(), NOTHING, ERROR),      # ... and a failure starts the count of successes again
        (ok(), NOTHING, ERROR),
        (ok(), RESOLVE, None),         # two in a row
    ])


def test_slow_checks_open_a_warning_after_failure_threshold_in_a_row_and_it_resolves_when_cleared():
    replay(RuleSettings(failure_threshold=3, success_threshold=2, max_response_time_ms=800), [
        (ok(900), NOTHING, None),
        (ok(100), NOTHING, None),      # the run of slow checks starts again
        (ok(900), NOTHING, None),
        (ok(950), NOTHING, None),
        (ok(990), WARN, WARNING),      # three slow checks in a row
        (ok(990), NOTHING, WARNING),   # dedup
        (ok(100), NOTHING, WARNING),   # cleared for one check: success_threshold is 2
        (ok(900), NOTHING, WARNING),
        (ok(100), NOTHING, WARNING),
        (ok(100), RESOLVE, None),      # cleared for two checks in a row
    ])


def test_the_warning_reason_says_what_was_seen():
    settings = RuleSettings(failure_threshold=1, max_response_time_ms=800)
    decision = judge(RuleState(), ok(950), settings)
    assert decision.reason == WarningReason("slow", response_time_ms=950, limit_ms=800, checks=1)
    settings = RuleSettings(failure_threshold=3, tls_expiry_days=14)
    decision = judge(RuleState(), ok(cert_days=2.4), settings, "2026-12-04 10:00:00")
    assert decision.action is WARN
    assert decision.reason == WarningReason("certificate", days_left=3, expires_at="2026-12-04 10:00:00")


def test_an_expiring_certificate_warns_from_one_check_and_a_renewed_one_clears_it():
    replay(RuleSettings(failure_threshold=3, tls_expiry_days=14), [
        (ok(cert_days=30), NOTHING, None),
        (ok(cert_days=13.5), WARN, WARNING),
        (ok(cert_days=13.4), NOTHING, WARNING),
        (ok(cert_days=90), RESOLVE, None),
    ])


def test_an_outage_while_a_warning_is_active_replaces_it_with_an_error():
    replay(RuleSettings(failure_threshold=2, max_response_time_ms=800), [
        (ok(900), NOTHING, None),
        (ok(900), WARN, WARNING),
        (down(), NOTHING, WARNING),    # not yet an outage: the WARNING stays
        (down(), REPLACE, ERROR),      # the WARNING is resolved without a notice, an ERROR opens
        (down(), NOTHING, ERROR),
        (ok(900), RESOLVE, None),      # the ERROR recovers; the slow condition waits ...
        (ok(900), WARN, WARNING),      # ... and is judged afresh: two slow checks in a row
    ])


def test_a_warning_condition_while_an_error_is_active_waits_for_the_error_to_resolve():
    replay(RuleSettings(failure_threshold=1, success_threshold=2, tls_expiry_days=14), [
        (down(), OPEN, ERROR),
        (ok(cert_days=3), NOTHING, ERROR),
        (ok(cert_days=3), RESOLVE, None),
        (ok(cert_days=3), WARN, WARNING),
    ])


def test_without_warning_settings_the_rules_are_spec_5():
    """Targets not in the file: env threshold, success_threshold 1, never a WARNING."""
    replay(RuleSettings(failure_threshold=3), [
        (ok(99999, cert_days=0.1), NOTHING, None),
        (down(), NOTHING, None), (down(), NOTHING, None), (down(), OPEN, ERROR),
        (ok(), RESOLVE, None),
    ])


def test_at_once_is_a_failure_threshold_of_one():
    state = RuleState(failures_in_a_row=0)
    settings = RuleSettings(failure_threshold=5)
    assert judge(state, down(), settings).action is NOTHING
    assert judge(state, down(), replace(settings, failure_threshold=1)).action is OPEN


def test_successes_in_a_row_counts_back_to_the_latest_failure():
    assert successes_in_a_row([False, False, True, False]) == 2
    assert successes_in_a_row([True, False]) == 0
