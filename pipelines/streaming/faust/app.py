"""The Faust application: one place that turns :class:`Settings` into a configured app
(and installs the seam's patches, see :mod:`~pipelines.streaming.faust.patches`)."""

from __future__ import annotations

from pathlib import Path

import faust

from pipelines.config import Settings
from pipelines.streaming.faust.credentials import faust_broker_credentials
from pipelines.streaming.faust.patches import install


def broker_url(bootstrap_servers: str) -> str:
    """Faust's broker URL list for a Kafka bootstrap string (``host:port,host:port``)."""
    return ";".join(f"kafka://{hp.strip()}" for hp in bootstrap_servers.split(",") if hp.strip())


def create_app(settings: Settings) -> faust.App:
    """A Faust app for these settings; the broker must already be resolved (see runtime)."""
    if not settings.kafka_bootstrap_servers:
        raise ValueError("create_app needs resolved settings: start pipelines.runtime first")
    install(settings.fetch_max_wait_ms)  # checks every patch's target first
    datadir = Path(settings.state_dir) / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.app_id,
        broker=broker_url(settings.kafka_bootstrap_servers),
        broker_credentials=faust_broker_credentials(settings),
        store=settings.store,
        datadir=str(datadir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Tansu admits a member only after the rebalance timeout; a short one keeps joins
        # fast in dev and tests, and production Kafka is fine with it for small groups.
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_session_timeout=max(10.0, settings.rebalance_timeout_s * 3),
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        # We expire participants ourselves (with a final event); Faust's windowed cleanup is
        # not used.
        table_cleanup_interval=3600.0,
        producer_linger=0.005,
        stream_wait_empty=False,
        # Throughput (docs/performance.md): the levels agent produces one record batch per
        # partition per flush, and batch envelopes are ~100-400 KiB per message.
        producer_max_batch_size=256 * 1024,
        # A fetched record set per partition, up to this size. 1 MiB would hold less in memory
        # but costs ~10 % more worker CPU per sample on the drain (more fetches to handle).
        consumer_max_fetch_size=4 * 1024 * 1024,
        # Messages queued per agent before the fetcher pauses. Faust's 4,096 is sized for small
        # records; 4,096 envelopes of ~400 KiB would be 1.6 GiB, and 256 still ~100 MB per agent
        # in a join storm (level bundles are up to 192 KiB). 64 envelopes are 16,000 samples,
        # three steps of the levels agent: a batch still fills.
        stream_buffer_maxsize=64,
    )
