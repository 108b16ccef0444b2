"""The levels agent: stats samples in, level-change events out, state in a changelog table.

Batches arrive through the seam's :class:`~pipelines.streaming.faust.intake.OrderedIntake`:
in offset order per partition, records Faust dropped on the way read again, and acknowledged
only once handled.
Per batch, in this order:

1. decode each message: a bare sample or a batch envelope of many (``netquality.stats.batch.v1``,
   see ``pipelines/contracts/batch.py``); invalid input goes to the dead-letter topic with the
   reason and is counted (the worker never crashes on input); an invalid sample inside an
   envelope is dead-lettered on its own, with its index, and the envelope's other samples go on;
2. a bare sample whose Kafka key is not its ``participantSid``, or any sample that sits in
   another partition than the default partitioner gives its ``participantSid``, is
   re-published as a bare sample keyed correctly and skipped here: it comes back on the right
   partition, so a participant's state, its changelog partition and its samples always share
   one partition;
3. the engine scores the batch (a subscriber's SFU sample with its upstream view, joined from
   the views table: ``pipelines/streaming/upstream.py``); events go to
   ``netquality.levels.v1`` and the latest level to the compacted
   ``netquality.levels.current.v1`` (a departed participant also gets a tombstone there),
   and, bundled per room partition (``pipelines/streaming/bundles.py``), to the rollups' and
   alerting's internal by-room topics, and the SFU publishers' uplink changes to the
   attribution room hop's; the agent waits for the broker's acks;
4. only then are the changed states written to the changelog-backed table, at most every
   :data:`FLUSH_INTERVAL_S` while batches keep coming (a participant changed by many batches
   of a backlog is written once); a batch is acknowledged, so its offset can be committed,
   only after the flush that covers it (:class:`~pipelines.streaming.stage.HeldBatches`).

The Faust wiring is :func:`pipelines.streaming.faust.wiring.attach_levels`.

A crash anywhere replays from the last committed offset; the engine drops samples it has
already applied (by ``seq``), and anything re-emitted carries the same event id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pipelines.config import Settings
from pipelines.contracts import (
    ContractError,
    dead_letter_for,
    decode_stats_message,
    encode,
    make_dead_letter,
)
from pipelines.contracts.stats import StatsSample
from pipelines.observability import METRICS
from pipelines.quality import Engine
from pipelines.quality.attribution import ViewLookup
from pipelines.quality.partitioner import default_partition
from pipelines.quality.room.level import encode_room_level
from pipelines.quality.room.views import encode_record
from pipelines.streaming.bundles import bundled
from pipelines.streaming.clock import StreamClock
from pipelines.streaming.stage import Emitter, HeldBatches, InputBatch, KeyedStates

log = logging.getLogger(__name__)

BATCH_SIZE = 1000
"""Kafka messages per agent batch: bare samples or envelopes of up to 1,000 samples each."""
MAX_SAMPLES_PER_STEP = 5000
"""Samples scored and published in one step (~0.1-0.3 s of work). Envelopes make a batch of
messages up to a few hundred thousand samples; in steps the stream clock keeps up with the
backlog (a long step would make it run ahead: participants would look silent)."""
BATCH_WITHIN_S = 0.01
"""How long a batch waits to fill: a latency floor for live traffic (a backlog fills at once)."""
FLUSH_INTERVAL_S = 2.0
"""Longest a changed state waits for its changelog write while batches keep coming. A
backlog's batches are small (what arrived while the last one was scored: 1-129 envelopes),
and writing every changed participant after each cost 0.56 changelog records per sample and
4.5 s of flushes in a 200,000-sample drain of 10,000 participants; with this interval, 0.24
and 1.2 s. Faust commits offsets every 2.8 s (its default) anyway, so a crash replays about
as much as before."""
FLUSH_CHECK_S = 0.25
"""How often a timer flushes batches held past :data:`FLUSH_INTERVAL_S` (the stream went
quiet) or during a rebalance."""
SWEEP_INTERVAL_S = 2.0
REPORT_INTERVAL_S = 30.0


class PartitionOf:
    """The partition of a participant, room or region id: Kafka's default partitioner, as the
    stats topic's producers and the tables' changelogs use it.

    Compiled with the core (:mod:`pipelines.quality.partitioner`, ~0.1 us an id), so nothing
    is remembered per id: a dict of every participant's partition was ~100 bytes per
    participant, and its keys, allocated among each batch's short-lived objects, kept their
    freed blocks from going back to the system (docs/performance.md, memory).
    """

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions

    def of_key(self, key: bytes) -> int:
        """The same for a UTF-8 key (table keys are the participant id's bytes)."""
        return default_partition(key, self.partitions)

    def split(
        self, samples: list[StatsSample], partition: int
    ) -> tuple[list[StatsSample], list[StatsSample]]:
        """(the samples whose participant belongs to ``partition``, the others); the list
        itself when all do (the common case: our publisher groups by this partitioner)."""
        partitions = self.partitions
        if all(
            default_partition(s.participant_sid.encode(), partitions) == partition
            for s in samples
        ):
            return samples, []
        ours: list[StatsSample] = []
        others: list[StatsSample] = []
        for sample in samples:
            (ours if self(sample.participant_sid) == partition else others).append(sample)
        return ours, others

    def __call__(self, participant_sid: str) -> int:
        return default_partition(participant_sid.encode(), self.partitions)


ROOM_STATES_KEPT = 2_048
"""Room states the room stages (alerts, rollups) hold decoded, the most recently written; the
others are their table's msgpack bytes, several times smaller. A room of five participants
decoded is ~2.5 KB of objects; a room's own events and its due sweeps decode it again on
demand. 2,048 rooms: a worker of up to ~10,000 participants never decodes a room twice."""


DECODED_STATES_KEPT = 16_384
"""Participants whose decoded state may stay in memory between batches (~2.7 KB each), the
most recently active, while they send again before they are evicted; when they do not (more
participants than this taking turns, a join storm) only 1,024 are kept
(:mod:`~pipelines.streaming.decoded_allowance`). The others are decoded from the table's bytes
(~5 us) when they next send. Memory per participant beyond this is the msgpack copy only
(docs/performance.md)."""


@dataclass
class LevelsCounts:
    """What the agent has done since it started (for logs, metrics and tests)."""

    samples: int = 0
    events: int = 0
    rerouted: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)


class LevelsProcessor:
    """The agent's logic over a batch of input records; the Faust wiring is
    :func:`pipelines.streaming.faust.wiring.attach_levels`. Topics are named; every record
    goes out through ``producer``."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        states: KeyedStates[Any],
        stats_topic: str,
        levels_topic: str,
        current_topic: str,
        deadletter_topic: str,
        producer: Emitter,
        partition_of: PartitionOf | None = None,
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.engine = engine
        self.states = states
        self.stats_topic = stats_topic
        self.levels_topic = levels_topic
        self.current_topic = current_topic
        self.deadletter_topic = deadletter_topic
        self.counts = LevelsCounts()
        if partition_of is None:
            partition_of = PartitionOf(settings.partitions)
        self.partition_of = partition_of
        """Shared with the state table."""
        self.room_partition_of = PartitionOf(settings.partitions)
        """Shared by the rollups and alerting stages and their tables."""
        self.lock = asyncio.Lock()
        self.held = HeldBatches()
        """Batches handled since the last flush (their offsets wait for it)."""
        self._flushing = asyncio.Lock()
        self.flushed_at = time.monotonic()
        self.rebalancing: Callable[[], bool] = lambda: False
        """True while the group rebalances: then states are flushed at once (set by the
        wiring)."""
        self.clock = StreamClock()
        self.sweep_after: int | None = None
        """Wall time (ms) before which sweeps are held back; None until the worker is ready."""
        self.room_topics: list[str] = []
        """Internal topics keyed by room that also get every level event (the rollups and
        alerting stages register theirs): routed here, in the step that made the events,
        instead of by agents re-reading the levels topic one Faust event at a time."""
        self.uplinks_topic: str | None = None
        """Where the engine's uplink changes go, by room (the attribution room hop's input),
        when the engine derives them (``Engine(uplinks=True)``; set by the wiring)."""
        self.views: ViewLookup | None = None
        """The subscribers' upstream views (the join's table), None to score each alone."""

    async def process(self, batch: InputBatch) -> bool:
        """Decode, route, score and publish one batch; then persist the changed states if a
        flush is due. Returns whether it flushed (else the batch waits in :attr:`held`)."""
        now = int(time.time() * 1000)
        pending: list[Awaitable[Any]] = []
        samples: list[StatsSample] = []
        produced: list[int] = []
        partition_of = self.partition_of
        send_keyed = self.producer.send_keyed
        for message in batch.records:
            raw = message.value
            try:
                decoded = decode_stats_message(raw)
            except ContractError as exc:
                pending.append(await self._dead_letter(message, exc.code, exc.message, now))
                continue
            for rejected in decoded.rejected:
                error = rejected.error
                pending.append(
                    await self._dead_letter(
                        message, error.code, error.message, now, original=rejected.original
                    )
                )
            # When our publisher produced it, not when we read it: after a restart the backlog
            # keeps its real spacing, so our downtime never looks like participant silence.
            at = int(message.timestamp * 1000) if message.timestamp else now
            partition = message.partition
            if not decoded.envelope:
                sample = decoded.samples[0]
                key = sample.participant_sid.encode()
                if message.key != key or partition != partition_of(sample.participant_sid):
                    self.counts.rerouted += 1
                    pending.append(await send_keyed(self.stats_topic, key, raw))
                    continue
                samples.append(sample)
                produced.append(at)
                continue
            ours, others = partition_of.split(decoded.samples, partition)
            for sample in others:  # the publisher grouped these by another partitioner
                self.counts.rerouted += 1
                key = sample.participant_sid.encode()
                pending.append(await send_keyed(self.stats_topic, key, encode(sample)))
            samples += ours
            produced += [at] * len(ours)
            if len(samples) >= MAX_SAMPLES_PER_STEP:
                await self._step(samples, produced, pending)
                samples, produced, pending = [], [], []
        await self._step(samples, produced, pending)
        if not self.flush_due(time.monotonic()):
            return False
        await self.flush()
        return True

    def flush_due(self, now: float) -> bool:
        """After a batch: the interval is over, too many states wait decoded (they cannot be
        evicted before they are written), or the group rebalances."""
        return (
            now - self.flushed_at >= FLUSH_INTERVAL_S
            or self.states.changed() >= max(
                self.states.decoded_limit() or DECODED_STATES_KEPT, MAX_SAMPLES_PER_STEP
            )
            or self.rebalancing()
        )

    async def flush(self) -> None:
        """Write the changed states, then release the batches that changed them.

        The states are taken under :attr:`lock`, so with every step's events acknowledged
        (a step holds it until its acks are in); the changelog's own acks are awaited after
        it is let go, so scoring goes on meanwhile (at 5,000 participants, holding it ~0.1-0.3
        s every 2 s was the latency section's p99). One flush at a time."""
        async with self._flushing:
            async with self.lock:
                complete = await self.states.start_flush(self.producer)
                covered = self.held.take()
                self.flushed_at = time.monotonic()
            await complete()
            HeldBatches.release_all(covered)

    async def _step(
        self, samples: list[StatsSample], produced: list[int], pending: list[Awaitable[Any]]
    ) -> None:
        """Score and publish; await every ack (``pending`` too). The changed states stay
        dirty until the next flush, which can only come after these acks; the batch's
        offsets are only committed after that (see :func:`run_batches`)."""
        if produced:
            self.clock.observe(max(produced), time.time())
        async with self.lock:
            began = time.perf_counter()
            self.counts.samples += len(samples)
            METRICS.samples.inc(len(samples))
            out = self.engine.feed_batch(samples, received_at=produced, views=self.views)
            # Each participant's clock against the stream's, from its latest sample here: an
            # event's stream time is its own time less that offset (see RoomLevel.stream_time).
            pairs = zip(samples, produced, strict=True)
            offset = {s.participant_sid: s.timestamp - at for s, at in pairs}
            pending.extend(
                await self._publish(out, lambda e: e.timestamp - offset[e.participant_sid])
            )
            pending.extend(await self._route_uplinks())
            if pending:
                await asyncio.gather(*pending)
            METRICS.batch_seconds.labels(service="worker").observe(time.perf_counter() - began)

    async def sweep(self, ready: bool) -> None:
        """Mark silent participants stale and expire departed ones.

        Silence is judged on the :class:`StreamClock`, and only once the worker is ready
        (recovered, not rebalancing) plus one staleness threshold, so a restart does not turn
        its own downtime into level-0 events.
        """
        wall = time.time()
        if not ready:
            self.sweep_after = None
            return
        if self.sweep_after is None:
            self.sweep_after = int(wall * 1000) + int(self.engine.thresholds.stale_after_s * 1000)
        now = self.clock.now(wall)
        if int(wall * 1000) < self.sweep_after or not now:
            return
        async with self.lock:
            out = self.engine.sweep(now)
            pending = await self._publish(out, lambda e: now)
            pending.extend(await self._route_uplinks())
            if pending:
                await asyncio.gather(*pending)
        await self.flush()

    async def _publish(
        self, events: list[Any], stream_time: Callable[[Any], int]
    ) -> list[Awaitable[Any]]:
        """Each event to the levels topic and the compacted current-levels topic (plus a
        tombstone for a departure), in the participant's partition, and bundled by room
        partition to the :attr:`room_topics` (as :class:`RoomLevel` records, the part the room
        stages read, stamped with ``stream_time(event)``: when the stream received the sample
        behind it, which the room stages judge the client's time against); returns the acks."""
        if not events:
            return []
        levels, current = self.levels_topic, self.current_topic
        partition_of, room_partition_of = self.partition_of, self.room_partition_of
        records: list[tuple[str, int, bytes | None, bytes | None]] = []
        by_room: list[tuple[int, bytes]] = []
        for event in events:
            sid = event.participant_sid
            key = sid.encode()
            value = encode(event)
            partition = partition_of(sid)
            records.append((levels, partition, key, value))
            records.append((current, partition, key, value))
            if event.departed:
                records.append((current, partition, key, None))
            by_room.append(
                (room_partition_of(event.room_sid), encode_room_level(event, stream_time(event)))
            )
        for topic in self.room_topics:
            records.extend(bundled(topic, by_room))
        self.counts.events += len(events)
        for level, n in Counter(event.level for event in events).items():
            METRICS.level_events.labels(level=str(level)).inc(n)
        return list(await self.producer.send(records))

    async def _route_uplinks(self) -> list[Awaitable[Any]]:
        """The engine's uplink changes since the last call to the room hop, bundled by room
        partition (in scoring order, so a room's changes stay in order); returns the acks."""
        changes = self.engine.take_uplink_changes()
        if not changes or self.uplinks_topic is None:
            return []
        room_partition_of = self.room_partition_of
        records = bundled(
            self.uplinks_topic, ((room_partition_of(c.room_sid), encode_record(c)) for c in changes)
        )
        return list(await self.producer.send(records))

    async def _dead_letter(
        self, message: Any, code: str, reason: str, now: int, original: bytes | None = None
    ) -> Awaitable[Any]:
        """Dead-letter ``message`` (or, with ``original``, one sample of its envelope)."""
        self.counts.dead_letters[code] += 1
        METRICS.dead_letters.labels(service="worker", code=code).inc()
        log.warning(
            "dead-lettered %s[%s]@%s: %s: %s",
            message.topic,
            message.partition,
            message.offset,
            code,
            reason,
        )
        if original is None:
            letter = dead_letter_for(message, code, reason, now)
        else:
            letter = make_dead_letter(
                original,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                code=code,
                message=reason,
                now_ms=now,
            )
        return await self.producer.send_keyed(self.deadletter_topic, message.key, encode(letter))
