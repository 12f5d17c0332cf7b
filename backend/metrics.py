"""The backend's Prometheus metrics (SPEC §12): counters bumped where things happen, gauges read at scrape time.

Under gunicorn every worker writes its counters to files in PROMETHEUS_MULTIPROC_DIR (set by
gunicorn_conf.py before any worker starts) and a scrape adds up every worker's files; under
waitress (one process) the counters live in this process's registry.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine

from backend.rules import is_agent_verdict, is_failure
from backend.store_deliveries import pending_by_channel
from backend.validation import EventIn

__all__ = ["INGEST_SECONDS", "events_received", "failures_in", "alert_opened", "alert_status_changed",
           "notification_attempt", "exposition"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Ours alone, not the library's default registry with its process collectors: one process under
# waitress, many under gunicorn, and the same metric names either way.
REGISTRY = CollectorRegistry(auto_describe=True)
disable_created_metrics()  # a *_created series per label set says nothing a scrape needs, and doubles the text

EVENTS_RECEIVED = Counter("outage_events_received", "Events taken by POST /events and /ping, by check result "
                          "(failure: as the alert rules judge it)", ["result"], registry=REGISTRY)
INGEST_SECONDS = Histogram("outage_ingest_duration_seconds", "Time to answer one POST /events or /ping request",
                           ["route"], registry=REGISTRY,
                           buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
ALERTS_OPENED = Counter("outage_alerts_opened", "Alerts opened, by type (ERROR or WARNING)", ["type"],
                        registry=REGISTRY)
ALERT_STATUS_CHANGES = Counter("outage_alert_status_changes", "Alerts that became ACK or RESOLVED, by new status",
                               ["status"], registry=REGISTRY)
NOTIFICATION_ATTEMPTS = Counter("outage_notification_attempts", "Notification log rows written, by channel and result: "
                                "delivery and channel test attempts (SENT, FAILED), notices kept quiet (SUPPRESSED)",
                                ["channel", "result"], registry=REGISTRY)

# Every known label value shows from the start (as 0), so a rate() has a series before the first one.
EVENTS_OK, EVENTS_FAILED = EVENTS_RECEIVED.labels("success"), EVENTS_RECEIVED.labels("failure")
for _route in ("events", "ping"):
    INGEST_SECONDS.labels(_route)
for _type in ("ERROR", "WARNING"):
    ALERTS_OPENED.labels(_type)
for _status in ("ACK", "RESOLVED"):
    ALERT_STATUS_CHANGES.labels(_status)


def events_received(failures: int, total: int) -> None:
    """Count one request's events: once per request, not once per event."""
    if failures:
        EVENTS_FAILED.inc(failures)
    if total > failures:
        EVENTS_OK.inc(total - failures)


def failures_in(new_events: list[EventIn]) -> int:
    """How many of a batch's events fail by the rules (SPEC §5, §9), a named target's by its agent's verdict."""
    return sum(1 for e in new_events
               if is_failure(e.is_success, e.status_code, is_agent_verdict(e.target is not None, e.target_url)))


# Ingest counts its alert changes and suppressed notices once its transaction has committed
# (after_commit.py): a group's rolled-back attempt, run again alone, counts nothing twice. A
# change by hand (service.py) counts inside its transaction, which commits right after.
def alert_opened(alert_type: str) -> None:
    """An alert was opened (SPEC §5)."""
    ALERTS_OPENED.labels(alert_type).inc()


def alert_status_changed(status: str) -> None:
    """An alert became ACK or RESOLVED, by hand or by a recovery."""
    ALERT_STATUS_CHANGES.labels(status).inc()


def notification_attempt(channel: str, result: str) -> None:
    """One delivery or channel test attempt on a channel ended with `result` (SENT or FAILED)."""
    NOTIFICATION_ATTEMPTS.labels(channel, result).inc()


def notices_suppressed(rows: list[dict]) -> None:
    """A notice's SUPPRESSED rows (SPEC §11), one per channel: called once per notice, never per event."""
    for row in rows:
        NOTIFICATION_ATTEMPTS.labels(row["channel"], "SUPPRESSED").inc()


class _Outbox:
    """Outbox depth and oldest pending age per channel, read from the database at each scrape.

    Every channel with notices waiting is shown, not only those this process can send: a named
    channel it could not build (a `${NAME}` unset here) must not hide its queue. The configured
    ones show as 0 when nothing waits, so a series exists before the first notice.
    """

    def __init__(self, engine: Engine, channels: list[str]):
        self.engine, self.channels = engine, channels

    def collect(self):
        depth = GaugeMetricFamily("outage_outbox_pending", "Notices waiting to be delivered, by channel",
                                  labels=["channel"])
        age = GaugeMetricFamily("outage_outbox_oldest_pending_age_seconds",
                                "Age of the oldest notice waiting to be delivered (0 when none), by channel",
                                labels=["channel"])
        now = datetime.now(timezone.utc)
        with self.engine.connect() as conn:
            pending = pending_by_channel(conn)
        for channel in sorted({*self.channels, *pending}):
            count, oldest = pending.get(channel, (0, None))
            depth.add_metric([channel], count)
            age.add_metric([channel], max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
        yield depth
        yield age


class _Ours:
    """This process's own registry, as one collector (waitress: a single process holds every count)."""

    def collect(self):
        return REGISTRY.collect()


def exposition(engine: Engine, channels: list[str], accept: str | None) -> tuple[bytes, str]:
    """What a scrape gets, and its content type: every worker's counters added up, then the outbox gauges.

    The Prometheus text format (0.0.4), or OpenMetrics when the Accept header asks for it.
    """
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROC_ENV):
        MultiProcessCollector(registry)
    else:
        registry.register(_Ours())
    registry.register(_Outbox(engine, channels))
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type
