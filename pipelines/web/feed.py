"""The live feed: one Kafka consumer per process, fanned out in memory to SSE subscribers.

The hub reads ``netquality.levels.v1`` from its end (no consumer group, nothing to commit, no
rebalance to wait for: a web process that restarts simply starts at the new end), and hands
every event to the queues of the subscribers of its room.

A new subscriber first registers its queue, then reads the room's current levels from
Postgres (``current_levels``), merges what the hub has seen newer than that, and sends it
all as one ``snapshot`` event. Queued live events that are not newer than what the snapshot
said about a participant are dropped, so nothing is sent twice or out of order. Why
Postgres rather than the compacted ``levels.current`` topic: it is the same source as
``/participants`` (one answer, not two), a room's rows come from an index instead of reading
a whole topic at every start (Tansu, the embedded broker, does not compact), and memory does
not grow with every participant of the platform. The price is the sink's lag (a fraction of
a second): the hub's own cache of what it has seen since start covers that gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer

from pipelines.contracts import ContractError, decode_level
from pipelines.kafka.clients import KafkaClients, tail
from pipelines.observability import METRICS
from pipelines.web.views import view_from_event

log = logging.getLogger(__name__)

QUEUE_SIZE = 1000
"""Events buffered per subscriber; a client that falls this far behind is disconnected and
reconnects (its EventSource does so by itself) with a fresh snapshot."""

RETRY_S = 2.0


@dataclass(eq=False)
class Subscription:
    room_sid: str
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_SIZE)
    )
    overflowed: bool = False


class FeedHub:
    """Tails the levels topic and fans each event out to its room's subscribers."""

    def __init__(self, clients: KafkaClients, topic: str, **consumer_options: Any) -> None:
        self.clients = clients
        self.consumer_options = consumer_options
        """aiokafka consumer options on top of the factory's (the fetch wait)."""
        self.topic = topic
        self._rooms: dict[str, set[Subscription]] = {}
        self._latest: dict[str, dict[str, dict[str, Any]]] = {}  # room -> participant -> view
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self.connected = asyncio.Event()
        self.events = 0
        self.last_poll = 0.0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="feed-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for subs in self._rooms.values():
            for sub in subs:
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(None)

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._rooms.values())

    def subscribe(self, room_sid: str) -> Subscription:
        sub = Subscription(room_sid)
        self._rooms.setdefault(room_sid, set()).add(sub)
        METRICS.feed_subscribers.inc()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._rooms.get(sub.room_sid)
        if subs is not None and sub in subs:
            subs.discard(sub)
            METRICS.feed_subscribers.dec()
            if not subs:
                del self._rooms[sub.room_sid]

    def seen(self, room_sid: str) -> list[dict[str, Any]]:
        """Views of the room's participants as last seen live by this process."""
        return list(self._latest.get(room_sid, {}).values())

    def publish(self, view: dict[str, Any]) -> None:
        """Remember the latest view and hand it to the room's subscribers (also for tests)."""
        room, participant = view["roomSid"], view["participantSid"]
        seen = self._latest.setdefault(room, {})
        previous = seen.get(participant)
        if previous is None or previous["timestamp"] <= view["timestamp"]:
            if view["departed"]:
                seen.pop(participant, None)
                if not seen:
                    self._latest.pop(room, None)
            else:
                seen[participant] = view
        for sub in list(self._rooms.get(room, ())):
            try:
                sub.queue.put_nowait(view)
            except asyncio.QueueFull:
                sub.overflowed = True
                self.unsubscribe(sub)
        self.events += 1

    async def _run(self) -> None:
        while True:
            consumer = self.clients.consumer(
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                request_timeout_ms=10_000,
                **self.consumer_options,
            )
            try:
                await consumer.start()
                self._consumer = consumer
                tps = await tail(consumer, self.topic)
                if not tps:
                    raise RuntimeError(f"topic {self.topic} does not exist yet")
                self.connected.set()
                log.info("live feed: tailing %s (%d partitions)", self.topic, len(tps))
                while True:
                    batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                    self.last_poll = time.monotonic()
                    for records in batches.values():
                        for record in records:
                            self._handle(record.value)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker down or topic missing: retry, stay up
                self.connected.clear()
                log.warning("live feed: %s; retrying in %.0fs", exc, RETRY_S)
                await asyncio.sleep(RETRY_S)
            finally:
                self._consumer = None
                with contextlib.suppress(Exception):
                    await consumer.stop()

    def _handle(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            event = decode_level(value)
        except ContractError as exc:  # the levels agent validated it; never crash the feed
            log.warning("live feed: skipping an undecodable level event: %s", exc.code)
            return
        self.publish(view_from_event(event))


def merge_snapshot(
    stored: list[dict[str, Any]], seen: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Postgres' current levels, overridden by newer live views; departed ones removed."""
    merged = {v["participantSid"]: v for v in stored}
    for view in seen:
        known = merged.get(view["participantSid"])
        if known is None or known["timestamp"] <= view["timestamp"]:
            merged[view["participantSid"]] = view
    return {sid: v for sid, v in merged.items() if not v["departed"]}


def sse(event: str, data: str, event_id: str | None = None) -> bytes:
    """One Server-Sent Event; ``data`` is one line of JSON (no newlines to escape)."""
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


async def next_or_heartbeat(
    sub: Subscription, heartbeat_s: float
) -> AsyncIterator[dict[str, Any] | None]:
    """Yield live views; ``None`` every ``heartbeat_s`` of silence (the caller sends a ping)."""
    while True:
        try:
            item = await asyncio.wait_for(sub.queue.get(), heartbeat_s)
        except TimeoutError:
            yield None
            continue
        if item is None:  # the hub is stopping
            return
        yield item
