"""A quick smoke run of each benchmark in bench/: it completes and reports figures. No speed is asserted."""

import math

import pytest

from bench import agent_load, alert_latency, ingest, queries


@pytest.mark.timeout(180)
@pytest.mark.parametrize("bench", [ingest, agent_load, alert_latency, queries],
                         ids=["ingest", "agent_load", "alert_latency", "queries"])
def test_benchmark_completes_in_a_quick_run(bench):
    rows = bench.run(quick=True)
    assert rows
    assert all(math.isfinite(row.value) for row in rows)
