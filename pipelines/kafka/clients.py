"""Every aiokafka client from :class:`Settings`: consumers, producers, admin clients.

The security settings (SASL, TLS) are translated once, by ``pipelines.security``, and only
this factory passes them on, so no client can be built without them. Create clients inside a
running event loop (aiokafka binds them to it) and ``start()``/``stop()`` them as usual.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from pipelines.config import Settings
from pipelines.security import aiokafka_client_config

GROUP_OPTIONS: dict[str, Any] = {
    "enable_auto_commit": False,
    "session_timeout_ms": 10_000,
    "heartbeat_interval_ms": 1_000,
    "max_poll_interval_ms": 600_000,
}
"""A commit-after-write group member: offsets only by hand, a dead member noticed in ~10 s,
and up to ten minutes between polls (a batch held while its writer is down)."""


class KafkaClients:
    """aiokafka clients for one broker; ``bootstrap_servers`` defaults to the settings'."""

    def __init__(self, settings: Settings, bootstrap_servers: str | None = None) -> None:
        servers = bootstrap_servers or settings.kafka_bootstrap_servers
        if not servers:
            raise ValueError("no Kafka bootstrap servers: resolve them with pipelines.runtime")
        self.settings = settings
        self.bootstrap_servers = servers
        self.security = aiokafka_client_config(settings)

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {"bootstrap_servers": self.bootstrap_servers, **self.security, **options}

    def consumer(self, *topics: str, **options: Any) -> AIOKafkaConsumer:
        """A consumer; ``options`` are aiokafka's (``group_id=None`` unless given)."""
        return AIOKafkaConsumer(*topics, **self._options(options))

    def group_consumer(
        self, *topics: str, group_id: str, from_beginning: bool = True, **options: Any
    ) -> AIOKafkaConsumer:
        """A member of ``group_id`` that commits by hand (see :func:`pipelines.kafka.run_group`);
        a new group starts at the beginning of the topics, or at their end."""
        return self.consumer(
            *topics,
            group_id=group_id,
            auto_offset_reset="earliest" if from_beginning else "latest",
            rebalance_timeout_ms=int(self.settings.rebalance_timeout_s * 1000),
            **{**GROUP_OPTIONS, **options},
        )

    def producer(self, **options: Any) -> AIOKafkaProducer:
        """A producer; ``options`` are aiokafka's."""
        return AIOKafkaProducer(**self._options(options))

    def admin(self, **options: Any) -> AIOKafkaAdminClient:
        """An admin client (topics, metadata); ``options`` are aiokafka's."""
        return AIOKafkaAdminClient(**self._options({"client_id": "netquality-admin", **options}))


async def tail(
    consumer: AIOKafkaConsumer, topic: str, *, from_beginning: bool = False
) -> list[TopicPartition] | None:
    """Assign a started, group-less consumer every partition of ``topic`` and seek to its
    start or end; None when the topic does not exist (a tail reads, it takes no partitions
    from anyone)."""
    await consumer.topics()  # loads metadata
    partitions = consumer.partitions_for_topic(topic) or set()
    if not partitions:
        return None
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(tps)
    if from_beginning:
        await consumer.seek_to_beginning(*tps)
    else:
        await consumer.seek_to_end(*tps)
    return tps
