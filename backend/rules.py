"""The alert rules of SPEC §5, as pure functions: no Flask, no database, no clock."""

from __future__ import annotations

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
    RESOLVE_ALERT = "RESOLVE_ALERT"  # resolve the active alert, send RECOVERY


@dataclass(frozen=True)
class TargetState:
    failures_in_a_row: int   # consecutive failed checks before the result being judged
    has_active_alert: bool   # an OPEN or ACK alert exists for the target


def is_agent_verdict(target: str | None, target_url: str) -> bool:
    """Whether the agent's `is_success` is the verdict: an event of a file target, or a tcp check (SPEC §9)."""
    # Only agents working from the targets file send `target`; a tcp check has no status to judge.
    return target is not None or target_url.startswith("tcp://")


def is_failure(is_success: bool, status_code: int | None, agent_verdict: bool) -> bool:
    """Whether a check failed: its `is_success` alone when the agent judged it (SPEC §9), else SPEC §5's rule.

    §5: a check fails when it says so, got no status, or got an HTTP error status.
    """
    if agent_verdict:
        return not is_success
    return (not is_success) or status_code is None or status_code >= 400


def decide(state: TargetState, failed: bool, threshold: int) -> Action:
    """What one new check result means for its target (SPEC §5)."""
    if not failed:
        return Action.RESOLVE_ALERT if state.has_active_alert else Action.NOTHING
    if state.has_active_alert:
        return Action.NOTHING  # dedup: one alert per outage, however long
    return Action.OPEN_ALERT if state.failures_in_a_row + 1 >= threshold else Action.NOTHING


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
    count = 0
    for failed in results_newest_first:
        if not failed:
            break
        count += 1
    return count


def decide_late(has_active_alert: bool, failed: bool, failures_now: int, threshold: int) -> Action:
    """What a late result (older than the newest applied one) means for its target.

    It can complete a run of failures that, in check-time order, reaches the threshold, so an
    outage reported out of order still opens its alert. It never resolves an alert: a newer check
    has already spoken for the target's present state. `failures_now` is the run of failures
    counted back from the newest check, with the late result in its place.
    """
    if failed and not has_active_alert and failures_now >= threshold:
        return Action.OPEN_ALERT
    return Action.NOTHING


def can_transition(current: AlertStatus, requested: AlertStatus) -> bool:
    """Whether PATCH may move an alert from `current` to `requested` (SPEC §4)."""
    return requested in ALLOWED_TRANSITIONS[current]
