"""Failed dashboard logins slow down per address, as a pure rule and a small in-process table."""

import pytest

from backend.web.login_throttle import MAX_WAIT_SECONDS, LoginThrottle, wait_seconds
from backend.web.charts import sparkline_points


@pytest.mark.parametrize("failures, wait", [(0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 4), (8, 32), (20, 300),
                                            (1000, 300)])
def test_the_wait_grows_after_a_few_free_failures_up_to_a_ceiling(failures, wait):
    assert wait_seconds(failures) == wait
    assert wait_seconds(failures) <= MAX_WAIT_SECONDS


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_one_address_is_slowed_and_another_is_not():
    clock = Clock()
    throttle = LoginThrottle(clock)
    for _ in range(3):
        throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 1  # three failures: wait 1 s
    throttle.failed("10.0.0.1")
    assert throttle.retry_after("10.0.0.1") == 2  # four failures: wait 2 s
    assert throttle.retry_after("10.0.0.2") == 0  # never a global lockout
    clock.now += 2
    assert throttle.retry_after("10.0.0.1") == 0


def test_a_right_password_or_a_quiet_hour_clears_the_count():
    clock = Clock()
    throttle = LoginThrottle(clock)
    for _ in range(5):
        throttle.failed("a")
        throttle.failed("b")
    throttle.succeeded("a")
    assert throttle.retry_after("a") == 0
    clock.now += 3601
    assert throttle.retry_after("b") == 0
    throttle.failed("b")
    assert throttle.retry_after("b") == 0  # counting from one again


def test_the_table_is_bounded(monkeypatch):
    monkeypatch.setattr("backend.web.login_throttle.MAX_ADDRESSES", 3)
    throttle = LoginThrottle(Clock())
    for address in "abcd":
        for _ in range(5):
            throttle.failed(address)
    assert throttle.retry_after("a") == 0  # the oldest went first
    assert throttle.retry_after("d") > 0


def test_a_sparkline_spans_the_box_highest_at_the_top():
    assert sparkline_points([]) == ""
    assert sparkline_points([10.0, 30.0, 20.0], width=100, height=22) == "0.0,21.0 50.0,1.0 100.0,11.0"
    assert sparkline_points([5.0], width=10, height=10) == "0.0,9.0 10.0,9.0"
