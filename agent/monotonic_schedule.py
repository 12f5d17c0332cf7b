"""`schedule` jobs on a monotonic clock, so a wall-clock step (DST, NTP, an admin) never stalls checks.

`schedule` (1.2) reads `datetime.datetime.now()`, naive local time, wherever it needs "now": after a
step back of an hour every job is an hour early and waits, and upstream keeps it so by design
(dbader/schedule#258). These subclasses keep its API and bookkeeping (`every(n).seconds.do(...)`,
`run_pending`, `idle_seconds`, `next_run`) but read an injectable monotonic clock instead. Their
`next_run` and `last_run` are naive datetimes on that clock's time line, not wall times: compare
them with `Scheduler.now()`, never with the wall clock.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Callable

import schedule

from agent.metrics import SCHEDULE_LAG

# The monotonic clock's zero as a datetime; any fixed moment would do, this one reads as "not a date".
_ORIGIN = dt.datetime(2000, 1, 1)
_UNITS = ("seconds", "minutes", "hours", "days", "weeks")


class MonotonicScheduler(schedule.Scheduler):
    """A `schedule.Scheduler` whose jobs fall due by `clock` (seconds, `time.monotonic` by default)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.clock = clock

    def now(self) -> dt.datetime:
        """The clock's reading as a naive datetime on the jobs' time line."""
        return self.at(self.clock())

    @staticmethod
    def at(reading: float) -> dt.datetime:
        """A clock reading (seconds) as a datetime on the jobs' time line, e.g. a job's first run."""
        return _ORIGIN + dt.timedelta(seconds=reading)

    def every(self, interval: float = 1) -> "MonotonicJob":
        return MonotonicJob(interval, self)

    @property
    def idle_seconds(self) -> float | None:
        next_run = self.next_run
        return None if next_run is None else (next_run - self.now()).total_seconds()


class MonotonicJob(schedule.Job):
    """A job due every interval after its first planned run; `at()`, `until()` and weekdays it refuses (wall clock)."""

    scheduler: MonotonicScheduler

    @property
    def should_run(self) -> bool:
        assert self.next_run is not None, "must run _schedule_next_run before"
        return self.scheduler.now() >= self.next_run

    def run(self):
        SCHEDULE_LAG.observe(max(0.0, (self.scheduler.now() - self.next_run).total_seconds()))
        ret = self.job_func()
        self.last_run = self.scheduler.now()
        self._schedule_next_run()
        return ret

    def _schedule_next_run(self) -> None:
        if self.unit not in _UNITS:
            raise schedule.ScheduleValueError(f"Invalid unit (valid units are {', '.join(_UNITS)})")
        if self.at_time is not None or self.start_day is not None or self.cancel_after is not None:
            raise schedule.ScheduleValueError("a monotonic job runs every interval: at(), until() and "
                                              "weekdays need the wall clock")
        interval = self.interval
        if self.latest is not None:
            if not self.latest >= self.interval:
                raise schedule.ScheduleError("`latest` is greater than `interval`")
            interval = random.randint(self.interval, self.latest)
        step, now = dt.timedelta(**{self.unit: interval}), self.scheduler.now()
        if self.next_run is None:  # the first run: one interval from now
            self.next_run = now + step
            return
        # From the planned time, not the run's: a late run does not push every later one back.
        # More than an interval behind, the missed runs are skipped, not caught up in a burst.
        self.next_run += ((now - self.next_run) // step + 1) * step
