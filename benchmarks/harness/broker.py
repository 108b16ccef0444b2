"""The bench's own Kafka clients (aiokafka, beside the worker's): fresh topics per measurement,
the prefill producer, the bare-consumer baseline and the reader of the levels topic."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def fresh_settings(base: Any, workdir: Path, tag: str, partitions: int) -> Any:
    from pipelines.streaming.topics import ensure_topics  # noqa: PLC0415

    suffix = f"{tag}-{uuid.uuid4().hex[:8]}"
    settings = base.with_overrides(
        state_dir=workdir / f"state-{suffix}",
        app_id=f"nq-bench-{suffix}",
        partitions=partitions,
        topic_stats=f"bench-stats-{suffix}",
        topic_levels=f"bench-levels-{suffix}",
        topic_levels_current=f"bench-current-{suffix}",
        topic_rollups=f"bench-rollups-{suffix}",
        topic_alerts=f"bench-alerts-{suffix}",
        topic_deadletter=f"bench-deadletter-{suffix}",
    )
    ensure_topics(settings)
    return settings


async def produce(
    bootstrap: str,
    topic: str,
    messages: list[tuple[int, bytes, bytes, int]],
    progress: Any,
    label: str,
) -> float:
    """Produce pre-partitioned messages in big batches (acks=1); seconds taken."""
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
        request_timeout_ms=60_000,
    )
    await producer.start()
    by_partition: dict[int, list[tuple[bytes, bytes, int]]] = {}
    for p, key, value, n in messages:
        by_partition.setdefault(p, []).append((key, value, n))
    total = sum(m[3] for m in messages)
    task = progress.add(label, total)
    done = 0

    async def one(partition: int, items: list[tuple[bytes, bytes, int]]) -> None:
        nonlocal done
        futures = []
        batch, count = producer.create_batch(), 0
        for key, value, n in items:
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                done += count
                progress.update(task, done)
                batch, count = producer.create_batch(), 0
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a {len(value)}-byte message does not fit in a batch")
            count += n
        if count:
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            done += count
        await asyncio.gather(*futures)

    try:
        began = time.monotonic()
        await asyncio.gather(*(one(p, items) for p, items in by_partition.items()))
        took = time.monotonic() - began
    finally:
        await producer.stop()
    progress.update(task, total, final=True)
    return took


async def bare_drain(bootstrap: str, topic: str, messages: int, deadline: float) -> float:
    """Seconds a bare aiokafka consumer (no group) takes to read ``messages`` records."""
    from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count = 0
        began = time.monotonic()
        while count < messages and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            count += sum(len(v) for v in batches.values())
        return time.monotonic() - began
    finally:
        await consumer.stop()


@dataclass
class Seen:
    """Level events seen on the levels topic: ids and when (monotonic) each first appeared."""

    first_at: float | None = None
    at: dict[str, float] = field(default_factory=dict)
    records: int = 0


READ_WAIT_MS = 10
"""Fetch wait of the bench's own readers (levels, and the latency baseline): a latency figure
should be when a record can be read, not when a long-polling fetch happened to return
(pipelines/streaming/faust/fetchwait.py)."""


async def read_levels(
    bootstrap: str,
    topic: str,
    seen: Seen,
    stop: asyncio.Event,
    on_event: Callable[[str, float], None] | None = None,
) -> None:
    """Follow the levels topic (manual assignment, no group) until ``stop``."""
    import msgspec  # noqa: PLC0415
    from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415

    class _Id(msgspec.Struct):
        eventId: str  # noqa: N815 (the wire name)

    decode = msgspec.json.Decoder(_Id).decode
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=READ_WAIT_MS
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50, max_records=10_000)
            now = time.monotonic()
            for messages in batches.values():
                for m in messages:
                    seen.records += 1
                    if seen.first_at is None:
                        seen.first_at = now
                    event_id = decode(m.value).eventId
                    if event_id not in seen.at:
                        seen.at[event_id] = now
                        if on_event is not None:
                            on_event(event_id, time.time())
    finally:
        await consumer.stop()
