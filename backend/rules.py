"""The alert rules of SPEC §5 and §9, as pure functions: no Flask, no database, no clock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


class AlertStatus(str, Enum):
    OPEN = "OPEN"
    ACK = "ACK"
    RESOLVED = "RESOLVED"


class AlertType(str, Enum):
    ERROR = "ERROR"
    WARNING = "WARNING"
    RECOVERY = "RECOVERY"
    REMINDER = "REMINDER"      # a notice type only: an alert still OPEN after REMINDER_MINUTES (SPEC §11)
    ESCALATION = "ESCALATION"  # a notice type only: an alert not acknowledged after escalate.after_minutes


ACTIVE_STATUSES = (AlertStatus.OPEN.value, AlertStatus.ACK.value)

# PATCH /alerts/<id> (SPEC §4): which requested status is allowed from which current one.
ALLOWED_TRANSITIONS = {
    AlertStatus.OPEN: {AlertStatus.ACK, AlertStatus.RESOLVED},
    AlertStatus.ACK: {AlertStatus.ACK, AlertStatus.RESOLVED},  # ACK -> ACK is a no-op
    AlertStatus.RESOLVED: set(),
}


class Action(str, Enum):
    NOTHING = "NOTHING"
    OPEN_ALERT = "OPEN_ALERT"        # open an ERROR alert, notify every channel
    RESOLVE_ALERT = "RESOLVE_ALERT"  # resolve the active alert (ERROR or WARNING), send RECOVERY
    OPEN_WARNING = "OPEN_WARNING"    # open a WARNING alert, notify every channel
    REPLACE_WARNING = "REPLACE_WARNING"  # resolve the active WARNING without a notice, open an ERROR


@dataclass(frozen=True)
class TargetState:
    failures_in_a_row: int   # consecutive failed checks before the result being judged
    has_active_alert: bool   # an OPEN or ACK alert exists for the target


@dataclass(frozen=True)
class RuleSettings:
    """A target's rule settings (SPEC §8, §9): its own value, else the file's defaults, else the backend's."""

    failure_threshold: int
    success_threshold: int = 1
    max_response_time_ms: int | None = None
    tls_expiry_days: int | None = None
    channels: tuple[str, ...] | None = None  # lower-case channel names; None: every configured channel
    reminder_minutes: float | None = None  # remind while OPEN, every this many minutes; None: no reminders
    escalate_after_minutes: float | None = None  # an alert still OPEN this long goes to escalate_channels, once
    escalate_channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Check:
    """What the rules look at in one result."""

    failed: bool
    response_time_ms: int | None = None
    cert_days_left: float | None = None  # days from the check to the certificate's expiry


@dataclass(frozen=True)
class RuleState:
    """A target's full rule state: the runs of results before the one being judged, and its active alert."""

    failures_in_a_row: int = 0
    successes_in_a_row: int = 0   # checks that did not fail, since the last one that did (up to success_threshold)
    slow_in_a_row: int = 0        # successful checks slower than max_response_time_ms (up to failure_threshold)
    clear_in_a_row: int = 0       # successful checks with no WARNING condition (up to success_threshold)
    active: AlertType | None = None  # the type of its OPEN or ACK alert (ERROR or WARNING)


@dataclass(frozen=True)
class WarningReason:
    """Why a WARNING opens: a slow run (`response_time_ms` over `limit_ms`, `checks` in a row) or a certificate."""

    kind: str                       # "slow" or "certificate"
    response_time_ms: int | None = None
    limit_ms: int | None = None
    checks: int | None = None
    days_left: int | None = None    # whole days, rounded up; 0 once expired
    expires_at: str | None = None   # the stored form, UTC


@dataclass(frozen=True)
class Decision:
    """What one result means: the action, the state after it, and a WARNING's reason when one opens."""

    action: Action
    state: RuleState
    reason: WarningReason | None = None


def judge(state: RuleState, check: Check, settings: RuleSettings, cert_expires_at: str | None = None) -> Decision:
    """What one new check result means for its target (SPEC §5, §9); at most one active alert per target."""
    failed = check.failed
    slow = (not failed and settings.max_response_time_ms is not None and check.response_time_ms is not None
            and check.response_time_ms > settings.max_response_time_ms)
    expiring = (not failed and settings.tls_expiry_days is not None and check.cert_days_left is not None
                and check.cert_days_left < settings.tls_expiry_days)
    # The runs other than failures stop at the threshold they are compared with, so a steady
    # target's state repeats and is not made anew for every check (the ingest path is hot).
    runs = (state.failures_in_a_row + 1 if failed else 0,
            0 if failed else min(state.successes_in_a_row + 1, settings.success_threshold),
            min(state.slow_in_a_row + 1, settings.failure_threshold) if slow else 0,
            0 if failed or slow or expiring else min(state.clear_in_a_row + 1, settings.success_threshold))
    if runs == (state.failures_in_a_row, state.successes_in_a_row, state.slow_in_a_row, state.clear_in_a_row):
        after = state
    else:
        after = RuleState(*runs, state.active)
    if failed:
        if state.active is AlertType.ERROR or after.failures_in_a_row < settings.failure_threshold:
            return Decision(Action.NOTHING, after)  # dedup, or not yet an outage
        action = Action.REPLACE_WARNING if state.active is AlertType.WARNING else Action.OPEN_ALERT
        return Decision(action, _with_active(after, AlertType.ERROR))
    if state.active is not None:
        # An ERROR recovers after success_threshold successes (a WARNING condition seen meanwhile
        # waits for the next check); a WARNING once its condition has been clear that long.
        run = after.successes_in_a_row if state.active is AlertType.ERROR else after.clear_in_a_row
        if run >= settings.success_threshold:
            return Decision(Action.RESOLVE_ALERT, _with_active(after, None))
        return Decision(Action.NOTHING, after)
    if slow and after.slow_in_a_row >= settings.failure_threshold:
        reason = WarningReason("slow", response_time_ms=check.response_time_ms,
                               limit_ms=settings.max_response_time_ms, checks=after.slow_in_a_row)
        return Decision(Action.OPEN_WARNING, _with_active(after, AlertType.WARNING), reason)
    if expiring:
        reason = WarningReason("certificate", days_left=max(0, math.ceil(check.cert_days_left)),
                               expires_at=cert_expires_at)
        return Decision(Action.OPEN_WARNING, _with_active(after, AlertType.WARNING), reason)
    return Decision(Action.NOTHING, after)


def _with_active(state: RuleState, active: AlertType | None) -> RuleState:
    return RuleState(state.failures_in_a_row, state.successes_in_a_row, state.slow_in_a_row, state.clear_in_a_row,
                     active)


def is_agent_verdict(in_file: bool, target_url: str) -> bool:
    """Whether the agent's `is_success` is the verdict: an event of a file target, or a tcp check (SPEC §9)."""
    # A tcp check has no status to judge, whoever sent it.
    return in_file or target_url.startswith("tcp://")


def is_failure(is_success: bool, status_code: int | None, agent_verdict: bool) -> bool:
    """Whether a check failed: its `is_success` alone when the agent judged it (SPEC §9), else SPEC §5's rule.

    §5: a check fails when it says so, got no status, or got an HTTP error status.
    """
    if agent_verdict:
        return not is_success
    return (not is_success) or status_code is None or status_code >= 400


def decide(state: TargetState, failed: bool, threshold: int) -> Action:
    """What one new check result means for a target with only a failure threshold (SPEC §5): `judge`'s plain case."""
    full = RuleState(state.failures_in_a_row, active=AlertType.ERROR if state.has_active_alert else None)
    return judge(full, Check(failed), RuleSettings(threshold)).action


def next_state(state: TargetState, failed: bool, action: Action) -> TargetState:
    """The target's state after a result has been judged and its action applied."""
    failures = state.failures_in_a_row + 1 if failed else 0
    if action is Action.OPEN_ALERT:
        return TargetState(failures, True)
    if action is Action.RESOLVE_ALERT:
        return TargetState(failures, False)
    return TargetState(failures, state.has_active_alert)


def failures_in_a_row(results_newest_first: list[bool]) -> int:
    """How many of the newest results were failures before the latest success (True = failed)."""
    return _leading(results_newest_first, True)


def successes_in_a_row(results_newest_first: list[bool]) -> int:
    """How many of the newest results were successes before the latest failure (True = failed)."""
    return _leading(results_newest_first, False)


def _leading(results: list[bool], value: bool) -> int:
    count = 0
    for result in results:
        if result is not value:
            break
        count += 1
    return count


def decide_late(has_active_alert: bool, failed: bool, failures_now: int, threshold: int) -> Action:
    """What a late result (older than the newest applied one) means for its target.

    It can complete a run of failures that, in check-time order, reaches the threshold, so an
    outage reported out of order still opens its alert. It never resolves an alert: a newer check
    has already spoken for the target's present state, and it never touches a WARNING (pass
    `has_active_alert` true while one is active). `failures_now` is the run of failures counted
    back from the newest check, with the late result in its place.
    """
    if failed and not has_active_alert and failures_now >= threshold:
        return Action.OPEN_ALERT
    return Action.NOTHING


def can_transition(current: AlertStatus, requested: AlertStatus) -> bool:
    """Whether PATCH may move an alert from `current` to `requested` (SPEC §4)."""
    return requested in ALLOWED_TRANSITIONS[current]
