"""The agent's event uids: UUID version 7, ordered by the time they were made, unique within a millisecond."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

from agent.event_uid import new_event_uid


def test_a_uid_is_a_canonical_uuid_version_7_that_starts_with_the_time_it_was_made():
    before = time.time_ns() // 1_000_000
    made = new_event_uid()
    after = time.time_ns() // 1_000_000
    parsed = uuid.UUID(made)
    assert str(parsed) == made  # lower case, hyphens: the form the backend stores
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert before <= parsed.int >> 80 <= after


def test_uids_made_later_sort_after_and_uids_made_together_differ():
    first = new_event_uid()
    time.sleep(0.002)
    second = new_event_uid()
    assert first < second and uuid.UUID(first).int < uuid.UUID(second).int
    together = [new_event_uid() for _ in range(10_000)]  # mostly within a few milliseconds
    assert len(set(together)) == len(together)


def test_the_time_in_a_uid_reads_back_as_the_clock():
    made = datetime.fromtimestamp((uuid.UUID(new_event_uid()).int >> 80) / 1000, timezone.utc)
    assert abs((datetime.now(timezone.utc) - made).total_seconds()) < 5
