"""The agent's Prometheus metrics (SPEC §12), served on AGENT_METRICS_PORT when it is set; off otherwise."""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, start_http_server
from prometheus_client.core import GaugeMetricFamily

# Ours alone, not the library's default registry: only what the agent itself measures.
REGISTRY = CollectorRegistry(auto_describe=True)
disable_created_metrics()  # a *_created series per label set says nothing a scrape needs

CHECKS = Counter("outage_agent_checks", "Checks done, by result (as the agent judged them)", ["result"],
                 registry=REGISTRY)
CHECK_SECONDS = Histogram("outage_agent_check_duration_seconds", "How long a check took, as measured and sent",
                          registry=REGISTRY,
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
SCHEDULE_LAG = Histogram("outage_agent_schedule_lag_seconds", "How late a slot of checks started after it was due",
                         registry=REGISTRY, buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0))
SEND_FAILURES = Counter("outage_agent_send_failures", "Sends of spooled results the backend did not take "
                        "(retries used up, or refused); the results stay spooled", registry=REGISTRY)
CHECKS_OK, CHECKS_FAILED = CHECKS.labels("success"), CHECKS.labels("failure")


def check_done(is_success: bool, response_time_ms: int | None) -> None:
    """Count one check and its duration."""
    (CHECKS_OK if is_success else CHECKS_FAILED).inc()
    if response_time_ms is not None:
        CHECK_SECONDS.observe(response_time_ms / 1000)


class _SpoolDepth:
    """Results waiting in the spool, read at each scrape (an in-memory count: no disk read)."""

    def __init__(self, depth: Callable[[], int]):
        self.depth = depth

    def collect(self):
        yield GaugeMetricFamily("outage_agent_spool_depth", "Results in the spool, not yet taken by the backend",
                                value=self.depth())


def serve(host: str, port: int, spool_depth: Callable[[], int]):
    """Start the metrics endpoint on a daemon thread; OSError when the address cannot be bound."""
    REGISTRY.register(_SpoolDepth(spool_depth))
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return server
