"""Broker compatibility: Tansu's ListOffsets(LATEST) under-reports the end of a partition.

Tansu (the embedded broker) answers ListOffsets(LATEST) with the base offset of the *last
record batch* + 1 instead of the last offset + 1, while its Fetch responses carry the right
high watermark (seen here: 17 records in two batches -> ListOffsets says 11, Fetch says 17).
Faust's changelog recovery reads each table partition up to ListOffsets(LATEST), so on Tansu
it would stop early and restore participants a few samples in the past.

:func:`install_end_offset_fix` corrects the end offsets Faust asks for with the high
watermark of one small fetch. On a broker that answers correctly the two agree and the fix
only costs that fetch, once per partition Faust recovers or checks.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

_FETCH_ROUNDS = 50


async def high_watermarks(
    bootstrap_servers: str | list[str], listed: Mapping[Any, int], **client_config: Any
) -> dict[Any, int]:
    """``listed`` end offsets, raised to the high watermark a fetch reports where it differs."""
    result = dict(listed)
    todo = [tp for tp, end in listed.items() if end > 0]
    if not todo:
        return result
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=1,
        **client_config,
    )
    await consumer.start()
    try:
        keyed = {TopicPartition(tp.topic, tp.partition): tp for tp in todo}
        consumer.assign(list(keyed))
        for atp, tp in keyed.items():
            consumer.seek(atp, listed[tp] - 1)
        pending = set(keyed)
        for _ in range(_FETCH_ROUNDS):
            await consumer.getmany(*pending, timeout_ms=200, max_records=1)
            for atp in list(pending):
                high = consumer.highwater(atp)
                if high is not None:
                    tp = keyed[atp]
                    if high != listed[tp]:
                        log.debug(
                            "end offset of %s: listed %s, fetch says %s", tp, listed[tp], high
                        )
                    result[tp] = max(listed[tp], high)
                    pending.discard(atp)
            if not pending:
                break
    finally:
        await consumer.stop()
    return result


def install_end_offset_fix() -> None:
    """Make Faust's highwater lookups (changelog recovery, lag) use fetch high watermarks."""
    from faust.transport.drivers import aiokafka as driver  # noqa: PLC0415

    thread = driver.AIOKafkaConsumerThread
    if getattr(thread._highwaters, "_netquality_fix", False):
        return
    original = thread._highwaters

    async def _highwaters(self: Any, partitions: Iterable[Any]) -> Mapping[Any, int]:
        listed = await original(self, partitions)
        if self.consumer.in_transaction or not listed:
            return listed
        client = self._ensure_consumer()._client
        # The same security settings as Faust's own consumer (SASL/TLS pass through).
        security = {
            "security_protocol": client._security_protocol,
            "ssl_context": client._ssl_context,
            "sasl_mechanism": client._sasl_mechanism,
            "sasl_plain_username": client._sasl_plain_username,
            "sasl_plain_password": client._sasl_plain_password,
        }
        return await high_watermarks(client._bootstrap_servers, listed, **security)

    _highwaters._netquality_fix = True  # type: ignore[attr-defined]
    thread._highwaters = _highwaters


class _PartitionMessage:
    __slots__ = ("partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition


class _PartitionEvent:
    """Just enough of a Faust event for a store to learn which partition a write belongs to."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _PartitionMessage(topic, partition)


@contextlib.contextmanager
def writing_to_partition(topic: str, partition: int) -> Iterator[None]:
    """Table writes inside this block are filed under ``partition`` by every Faust store.

    With ``use_partitioner=True`` the changelog record's partition comes from the key, but
    Faust's RocksDB store still files the local write under the *current event's* partition
    (``faust/stores/rocksdb.py`` ``Store._set``). Writes made for a batch, or by a timer, have
    no such event, so we provide one that names the partition the key really belongs to.
    """
    from faust import streams  # noqa: PLC0415

    stand_in = _PartitionEvent(topic, partition)
    token = streams._current_event.set(weakref.ref(stand_in))
    try:
        yield
    finally:
        streams._current_event.reset(token)
