"""Prometheus metrics of every netquality service, on one registry per process.

Each service (worker, sink, web) serves ``/metrics`` on ``NETQUALITY_METRICS_PORT`` (0 turns it
off). Names follow Prometheus conventions: counters end in ``_total``, durations are seconds.
The labels are bounded sets (service, topic, partition, level, dead-letter code, table, route),
never participant or room ids, so the series count does not grow with traffic.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)


class Metrics:
    """The metric families; one instance per process (``METRICS``), a fresh one per test."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.samples = Counter(
            "netquality_samples_total",
            "Stats samples consumed by the levels agent (envelopes counted per sample)",
            registry=r,
        )
        self.level_events = Counter(
            "netquality_level_events_total",
            "Level-change events published, by the new overall level",
            ["level"],
            registry=r,
        )
        self.participants = Gauge(
            "netquality_participants",
            "Active participants owned by this worker, by current overall level",
            ["level"],
            registry=r,
        )
        self.dead_letters = Counter(
            "netquality_dead_letters_total",
            "Inputs rejected to the dead-letter topic, by service and reason code",
            ["service", "code"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "netquality_consumer_lag",
            "Messages between the consumer position and the partition's high watermark",
            ["service", "topic", "partition"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "netquality_batch_seconds",
            "Time to process one batch end to end (score+publish, or a sink DB transaction)",
            ["service"],
            registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.rows_written = Counter(
            "netquality_rows_written_total",
            "Rows the sink inserted or updated in Postgres, by table",
            ["table"],
            registry=r,
        )
        self.errors = Counter(
            "netquality_errors_total",
            "Errors handled by retrying or skipping, by service and kind",
            ["service", "kind"],
            registry=r,
        )
        self.out_of_bounds = Counter(
            "netquality_events_out_of_bounds_total",
            "Level events a room stage dropped because their time was too far from the stream "
            "clock (a wrong client clock), by stage and verdict (late, ahead)",
            ["stage", "verdict"],
            registry=r,
        )
        self.intake_gaps = Counter(
            "netquality_intake_gaps_total",
            "Input records a Faust stream skipped: read again after a seek (outcome=reread), "
            "or given up as deleted or absent (outcome=accepted)",
            ["agent", "outcome"],
            registry=r,
        )
        self.http_requests = Counter(
            "netquality_http_requests_total",
            "HTTP requests served, by route template and status code",
            ["route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "netquality_http_request_seconds",
            "HTTP request duration by route template",
            ["route"],
            registry=r,
        )
        self.worker_keys = Gauge(
            "netquality_worker_keys",
            "Keys the levels agent holds in memory, by structure: stored (participant states "
            "in the table) and decoded (states kept decoded)",
            ["structure"],
            registry=r,
        )
        self.feed_subscribers = Gauge(
            "netquality_feed_subscribers", "Open live-feed (SSE) connections", registry=r
        )


METRICS = Metrics()


def serve_metrics(port: int, host: str = "0.0.0.0", metrics: Metrics = METRICS) -> bool:
    """Serve ``/metrics`` in a daemon thread; False (and a log line) when the port is 0."""
    if port <= 0:
        log.info("metrics endpoint disabled (NETQUALITY_METRICS_PORT=0)")
        return False
    start_http_server(port, addr=host, registry=metrics.registry)
    log.info("metrics on http://%s:%d/metrics", host, port)
    return True
