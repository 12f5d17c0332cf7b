"""The response-time histogram: fixed log-spaced buckets, and a p95 within the stated error of the exact one."""

import random

import pytest

from backend import histogram
from backend.histogram import MAX_RELATIVE_ERROR, RATIO, bucket_of, decode, encode, percentile_ms


@pytest.mark.parametrize("ms", [0, 0.5, 1, 2, 10, 11, 99, 100, 1000, 5000, 30000, 10 ** 9])
def test_a_time_falls_in_the_bucket_whose_bounds_hold_it(ms):
    b = bucket_of(ms)
    if ms < 1:
        assert b == 0
    else:
        assert RATIO ** (b - 1) <= ms < RATIO ** b


def test_every_edge_lands_in_the_bucket_it_opens():
    for b in range(1, 250):
        assert bucket_of(RATIO ** (b - 1)) in (b, b + 1) and bucket_of(RATIO ** b * 0.9999999) == b


@pytest.mark.parametrize("seed", range(20))
def test_the_p95_read_from_buckets_is_within_the_stated_error(seed):
    rng = random.Random(seed)
    times = [int(rng.lognormvariate(5, 1)) for _ in range(rng.randint(1, 3000))]
    counts = decode(encode(histogram_of(times)))
    exact = sorted(times)[-(-95 * len(times) // 100) - 1]
    assert abs(percentile_ms(counts, 95) - exact) <= MAX_RELATIVE_ERROR * exact


def test_small_whole_times_come_back_exactly():
    assert [percentile_ms(histogram_of([ms]), 95) for ms in (0, 1, 5, 10)] == [0.0, 1.0, 5.0, 10.0]


def test_an_empty_histogram_has_no_percentile():
    assert percentile_ms(decode(""), 95) is None and histogram.encode(decode(None)) == ""


def histogram_of(times):
    from collections import Counter
    return Counter(bucket_of(t) for t in times)
