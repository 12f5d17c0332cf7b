"""Response-time histograms with fixed log-spaced buckets: pure functions, no database, no clock.

Bucket i >= 1 holds the times t (in ms) with RATIO**(i-1) <= t < RATIO**i; bucket 0 holds 0 ms (and
anything below 1 ms). A percentile read back from a bucket is the bucket's geometric middle (clamped
to the whole milliseconds it can hold), so it is within sqrt(RATIO) - 1 = 4.9% of the exact
nearest-rank percentile of the times counted. The edges are fixed forever: rollups written by one
version are summed by the next.
"""

from __future__ import annotations

import math
from collections import Counter

RATIO = 1.1
_LOG_RATIO = math.log(RATIO)
MAX_RELATIVE_ERROR = math.sqrt(RATIO) - 1


def bucket_of(response_time_ms: float) -> int:
    """The bucket that counts one response time."""
    if response_time_ms < 1:
        return 0
    i = int(math.log(response_time_ms) / _LOG_RATIO) + 1
    # math.log is inexact at the edges: step to the bucket whose bounds really hold the time.
    while i > 1 and response_time_ms < RATIO ** (i - 1):
        i -= 1
    while response_time_ms >= RATIO ** i:
        i += 1
    return i


def representative_ms(bucket: int) -> float:
    """The value a bucket stands for: its geometric middle, kept within the whole milliseconds it holds."""
    if bucket == 0:
        return 0.0
    low, high = RATIO ** (bucket - 1), RATIO ** bucket
    middle = math.sqrt(low * high)
    first, last = math.ceil(low), math.ceil(high) - 1  # the whole ms in [low, high), when there are any
    return float(min(max(middle, first), last)) if first <= last else middle


def encode(counts: Counter) -> str:
    """A histogram as stored: `bucket:count` pairs by bucket, space-separated (sparse: most buckets are empty)."""
    return " ".join(f"{b}:{n}" for b, n in sorted(counts.items()) if n)


def decode(text: str | None, into: Counter | None = None) -> Counter:
    """Add a stored histogram's counts into `into` (a new Counter by default) and return it."""
    counts = Counter() if into is None else into
    for pair in (text or "").split():
        bucket, _, count = pair.partition(":")
        counts[int(bucket)] += int(count)
    return counts


def sum_of(texts) -> Counter:
    """The counts of many stored histograms added up (a 30-day window adds 720)."""
    # Equal pairs recur across hours: count the pair strings in C first, then parse each once.
    counts = Counter()
    for pair, times in Counter(" ".join(filter(None, texts)).split()).items():
        bucket, _, count = pair.partition(":")
        counts[int(bucket)] += int(count) * times
    return counts


def percentile_ms(counts: Counter, p: float) -> float | None:
    """The nearest-rank p-th percentile (0 < p <= 100) of the counted times, read from their buckets; None if empty."""
    total = sum(counts.values())
    if not total:
        return None
    rank = max(1, math.ceil(p * total / 100))
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen >= rank:
            return representative_ms(bucket)
    raise AssertionError("unreachable: the ranks add up to the total")
