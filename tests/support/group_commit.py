"""Queueing writes behind a running group commit (backend/group_commit.py), in a known order."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from backend.group_commit import GroupCommit
from tests.support.procs import wait_until


def queue_in_turn(writes: GroupCommit, pool: ThreadPoolExecutor, calls: list[Callable]) -> list[Future]:
    """Start each call on `pool` once the one before has queued on `writes` (whose group is running); their futures."""
    futures: list[Future] = []
    for call in calls:
        futures.append(pool.submit(call))
        wait_until(lambda: len(writes._queue) == len(futures), 5, 0.01, "the write queued behind the running group")
    return futures
