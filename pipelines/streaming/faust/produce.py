"""Producing many records cheaply: one aiokafka record batch per (topic, partition).

Faust's ``Topic.send`` costs ~50-100 us of Python per record (a FutureMessage, the producer
buffer, aiokafka's per-message ``send``, sensors); appending to an aiokafka ``BatchBuilder``
costs a few us. The levels agent writes one changelog record per changed participant and two
records per level event, so on a drain this is most of the worker's CPU (py-spy, see
docs/performance.md). Records still go through the app's own aiokafka producer (same
connection, acks and settings), and the caller awaits every batch's acknowledgement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from pipelines.streaming.stage import Delivered, Record


class BatchProducer:
    """Sends records grouped by (topic, partition), in order within each group (the seam's
    :class:`~pipelines.streaming.stage.Emitter`)."""

    def __init__(
        self, producer_of: Callable[[], Any], topics: Iterable[Any] = ()
    ) -> None:
        self.producer_of = producer_of
        """Returns the started ``AIOKafkaProducer`` (the app's; known only once it runs)."""
        self.topics = {topic.get_topic_name(): topic for topic in topics}
        """Faust topics by name, for :meth:`send_keyed`."""

    async def send_keyed(self, topic: str, key: bytes | None, value: bytes) -> Any:
        """One record through Faust's ``Topic.send`` (its partitioner picks the partition
        from the key); returns the future of its acknowledgement."""
        return await self.topics[topic].send(key=key, value=value)

    async def send(self, records: Iterable[Record]) -> list[asyncio.Future[Delivered]]:
        """Hand every record to the producer; returns one future per batch sent."""
        producer = self.producer_of()
        groups: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
        for topic, partition, key, value in records:
            groups.setdefault((topic, partition), []).append((key, value))
        futures: list[asyncio.Future[Delivered]] = []
        loop = asyncio.get_running_loop()
        for (topic, partition), items in groups.items():
            batch, count = producer.create_batch(), 0
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await self._send(loop, producer, batch, topic, partition, count))
                    batch, count = producer.create_batch(), 0
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(
                            f"a {len(value or b'')}-byte record does not fit in a batch"
                        )
                count += 1
            if count:
                futures.append(await self._send(loop, producer, batch, topic, partition, count))
        return futures

    @staticmethod
    async def _send(
        loop: asyncio.AbstractEventLoop, producer: Any, batch: Any, topic: str, partition: int,
        count: int,
    ) -> asyncio.Future[Delivered]:  # fmt: skip
        sent = await producer.send_batch(batch, topic, partition=partition)
        done: asyncio.Future[Delivered] = loop.create_future()

        def resolve(fut: asyncio.Future[Any]) -> None:
            if done.cancelled():
                return
            if fut.cancelled():
                done.cancel()
            elif fut.exception() is not None:
                done.set_exception(fut.exception())  # type: ignore[arg-type]
            else:
                done.set_result(Delivered(topic, partition, fut.result().offset, count))

        sent.add_done_callback(resolve)
        return done


def app_producer(app: Any) -> Callable[[], Any]:
    """The running aiokafka producer of a Faust app (its aiokafka driver's)."""

    def get() -> Any:
        return app.producer._ensure_producer()

    return get
