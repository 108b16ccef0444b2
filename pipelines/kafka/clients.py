"""Every aiokafka client from :class:`Settings`: consumers, producers, admin clients.

The security settings (SASL, TLS) are translated once, by ``pipelines.security``, and only
this factory passes them on, so no client can be built without them. Create clients inside a
running event loop (aiokafka binds them to it) and ``start()``/``stop()`` them as usual.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError

from pipelines.config import Settings
from pipelines.security import aiokafka_client_config

T = TypeVar("T")

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
    consumer: AIOKafkaConsumer, *topics: str, from_beginning: bool = False
) -> list[TopicPartition]:
    """Assign a started, group-less consumer every partition of ``topics`` and seek to their
    start or end; a topic that does not exist has none (a tail reads, it takes no partitions
    from anyone)."""
    await consumer.topics()  # loads metadata
    tps = [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    if not tps:
        return tps
    consumer.assign(tps)
    if from_beginning:
        await consumer.seek_to_beginning(*tps)
    else:
        await consumer.seek_to_end(*tps)
    return tps


@asynccontextmanager
async def admin_session(
    clients: KafkaClients, timeout_s: float
) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed after; connecting is retried for ``timeout_s`` (a broker
    that is still starting, as kafka-python's ``bootstrap_timeout_ms`` did)."""
    timeout_ms = int(timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    while True:
        admin = clients.admin(request_timeout_ms=timeout_ms)
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            await admin.close()
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    try:
        yield admin
    finally:
        await admin.close()


def blocking(main: Coroutine[Any, Any, T]) -> T:
    """Run an admin coroutine from blocking code (start-up, health checks), in a thread of its
    own when this one already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main).result()
