"""The rollups stages: level changes -> per-minute room and region aggregates.

Two keyed stages, each with its state in a changelog-backed table:

1. the levels agent routes its level events by room onto an internal topic, bundled
   (``pipelines/streaming/bundles.py``: one Kafka message per partition and step, not one
   per event);
2. the room stage folds them into :class:`RoomRollups` (the step-function rules live in
   ``pipelines.quality.rollups``) and publishes each closed (or corrected) room minute to
   ``netquality.rollups.v1`` and, bundled by region partition, to an internal topic;
3. the region stage sums room minutes into :class:`RegionRollups` and publishes region minutes,
   each changed minute once per batch (its last version: the sinks keep the last write).

Outputs go through an :class:`~pipelines.streaming.stage.Emitter` (the seam's sends one record
batch per partition) and the states through their
:meth:`~pipelines.streaming.stage.KeyedStates.flush_batched`, after the outputs are acknowledged.

Minutes close on *event time*: a :class:`StreamClock` over the stream times the levels agent
stamps on its events (when the sample behind each reached the stream; a client's own clock may
be years off), less the allowed lateness. While events flow it is where the stream is, so
replaying old data closes its minutes in order instead of dropping it as late; when they stop
it moves on with the wall clock, minute by minute, so the last minutes of a call close too.
An event whose own time is too far behind or ahead of that clock is dropped and counted
(:func:`~pipelines.streaming.clock.admit`, ``pipelines.quality.event_time``), so one wrong
clock cannot fill years of minutes. On a graceful stop the open minutes are written as they
stand (:meth:`RollupsProcessor.flush_open_minutes`). A timer applies it
to every room, since a quiet room's own events would never close a minute. Presence ends at a
participant's ``departed`` event, which the levels agent emits on leaving or expiry, so a
quiet room emits a bounded number of minutes; once its closed minutes are past correction
(:attr:`RoomRollups.is_idle`) the timer deletes its table entry, so ended rooms cost nothing.
Re-emitted minutes carry the same key with a higher ``revision``; the sink upserts, so nothing
is counted twice.
Only recently written rooms stay decoded (:data:`~pipelines.streaming.levels.ROOM_STATES_KEPT`);
the timer reads the
others' bytes through ``pipelines.quality.rollups_due`` and decodes only rooms that can close
a minute, and a room decoded again catches up with the watermarks of the sweeps it missed
(:class:`~pipelines.streaming.missed_sweeps.MissedSweeps`), so every output and state is
what it would be with every room decoded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable

import msgspec

from pipelines.config import Settings
from pipelines.observability import METRICS
from pipelines.quality.event_time import EventTimeBounds, Verdict, describe
from pipelines.quality.rollups import (
    DEFAULT_ALLOWED_LATENESS_MS,
    MinuteRollup,
    RegionRollups,
    RoomRollups,
    decode_rollup,
    dump_region,
    latest_of_each_minute,
    load_region,
)
from pipelines.quality.rollups_due import RoomRollupsDue
from pipelines.quality.room_level import RoomLevel, decode_room_level
from pipelines.streaming.bundles import bundled, records_of
from pipelines.streaming.clock import DEFAULT_BOUNDS, StreamClock, admit
from pipelines.streaming.levels import PartitionOf
from pipelines.streaming.missed_sweeps import MissedSweeps, catch_up_on_decode
from pipelines.streaming.stage import Emitter, InputBatch, KeyedStates, Record

log = logging.getLogger(__name__)

ADVANCE_INTERVAL_S = 5.0


_ALL = 0
"""The sweeps' one "partition": the rollups timer applies one watermark to every room."""


class RollupsProcessor:
    """The room and region stages' logic; the Faust wiring is
    :func:`pipelines.streaming.faust.wiring.attach_rollups`."""

    def __init__(
        self,
        rooms: KeyedStates[RoomRollups],
        regions: KeyedStates[RegionRollups],
        by_region: str,
        rollups_topic: str,
        producer: Emitter,
        partitions: int,
        partition_of: PartitionOf | None = None,
        bounds: EventTimeBounds = DEFAULT_BOUNDS,
    ) -> None:
        self.rooms = rooms
        self.regions = regions
        self.by_region = by_region
        self.rollups_topic = rollups_topic
        self.producer = producer
        if partition_of is None:
            partition_of = PartitionOf(partitions)
        self.partition_of = partition_of
        self.clock = StreamClock()
        """Stream time of the level stream (see the module docstring)."""
        self.bounds = bounds
        self.out_of_bounds: Counter[str] = Counter()
        """Level events dropped by their time: ``late`` and ``ahead`` (see :func:`admit`)."""
        self.lock = asyncio.Lock()
        self.emitted = 0
        self.skipped = 0
        self.missed = MissedSweeps()
        if rooms is not None:  # the room states decoded again catch up with the sweeps
            catch_up_on_decode(rooms, self._catch_up)

    def _catch_up(self, room: RoomRollups) -> None:
        """A room decoded from its table bytes, advanced as the sweeps it missed would have."""
        seen = self.missed.seen(_ALL, room.room_sid)
        if seen and room.advance(seen):
            log.error("rollups: room %s had minutes to close at a sweep it missed", room.room_sid)

    def _count(self, verdict: Verdict, level: RoomLevel) -> None:
        """Count a level event dropped by its time; log the first of each kind and then
        every power of two (one wrong clock sends an event per level change)."""
        n = self.out_of_bounds[verdict] = self.out_of_bounds[verdict] + 1
        METRICS.out_of_bounds.labels(stage="rollups", verdict=verdict).inc()
        if n & (n - 1) == 0:
            log.warning(
                "rollups: dropped %d level event(s) %s, the last %s (client time %d, stream"
                " time %s): is that client's clock wrong?", n, describe(verdict, self.bounds),
                level.event_id, level.timestamp, level.stream_time,
            )  # fmt: skip

    def forget_cache(self) -> None:
        """After a rebalance the tables are the truth: drop decoded copies (and their sweeps)."""
        self.rooms.forget_cache()
        self.regions.forget_cache()
        self.missed.clear()

    async def rooms_batch(self, batch: InputBatch) -> None:
        """Fold level events into their rooms; publish the minutes that closed or changed."""
        out: list[MinuteRollup] = []
        async with self.lock:
            for value in records_of(batch.records, "rollups"):
                try:
                    level = decode_room_level(value)
                except msgspec.DecodeError as exc:
                    self.skipped += 1
                    log.warning("rollups: skipping undecodable level event: %s", exc)
                    continue
                verdict = admit(self.clock, level, self.bounds, time.time())
                if verdict != "accepted":
                    self._count(verdict, level)
                    continue
                room = self.rooms.get(level.room_sid)
                if room is None:
                    room = RoomRollups.for_event(level)
                    self.missed.created(_ALL, level.room_sid)
                out.extend(room.apply(level))
                self.rooms[level.room_sid] = room
            await self._publish(out, to_regions=True)
            await self.rooms.flush_batched(self.producer)

    async def advance_quiet_rooms(self) -> None:
        """Close the minutes of rooms whose own events stopped, at the stream's watermark."""
        now = self.clock.now(time.time())
        if not now:
            return
        out: list[MinuteRollup] = []
        async with self.lock:
            watermark = now - DEFAULT_ALLOWED_LATENESS_MS
            work = sorted(
                room_sid
                for room_sid, state in self.rooms.scan()
                if not isinstance(state, RoomRollupsDue) or state.due(watermark)
            )
            step = self.rooms.keep_decoded or len(work)
            for i, room_sid in enumerate(work):
                if i and i % step == 0:  # at most a cache's worth decoded at once
                    await self._publish(out, to_regions=True)
                    await self.rooms.flush_batched(self.producer)
                    out = []
                room = self.rooms[room_sid]
                closed = room.advance(watermark)
                out.extend(closed)
                if room.is_idle:  # everyone left and no closed minute is correctable any more
                    del self.rooms[room_sid]
                elif closed:
                    self.rooms[room_sid] = room
            self.missed.swept(_ALL, watermark)  # after the decoding above: see _catch_up
            await self._publish(out, to_regions=True)
            await self.rooms.flush_batched(self.producer)

    async def flush_open_minutes(self, owns_region: Callable[[str], bool]) -> int:
        """On a graceful stop: publish every room's open minute as it stands at the stream
        clock (``RoomRollups.open_minutes``): what the timer would close if the minute ended
        now (level events come only on changes, so the newest one read is no measure of how
        long anyone stayed); returns how many room minutes.

        The states are not changed, so a restart closes these minutes as usual and their full
        versions replace them (the sink upserts by minute). A region this worker holds gets
        its partial minute from a copy of its state (the copy is dropped, for the same
        reason); the room minutes of a region held elsewhere go to that region's stage.
        """
        until = self.clock.now(time.time())
        if not until:
            return 0
        async with self.lock:
            rooms: list[MinuteRollup] = []
            for room_sid, _ in list(self.rooms.scan()):
                rooms.extend(self.rooms[room_sid].open_minutes(until))
            copies: dict[str, RegionRollups] = {}
            regions: list[MinuteRollup] = []
            here: list[MinuteRollup] = []
            elsewhere: list[MinuteRollup] = []
            for minute in rooms:
                region = copies.get(minute.region)
                if region is None and owns_region(minute.region):
                    held = self.regions.get(minute.region)
                    region = copies[minute.region] = (
                        RegionRollups(minute.region) if held is None
                        else load_region(dump_region(held))
                    )  # fmt: skip
                if region is None:
                    elsewhere.append(minute)
                else:
                    here.append(minute)
                    regions.extend(region.apply(minute))
            await self._publish(here, to_regions=False)
            await self._publish(elsewhere, to_regions=True)
            await self._publish(latest_of_each_minute(regions), to_regions=False)
        log.info("rollups: flushed %d open room minute(s) at stop", len(rooms))
        return len(rooms)

    async def regions_batch(self, batch: InputBatch) -> None:
        """Sum room minutes into their regions; publish the region minutes that changed."""
        out: list[MinuteRollup] = []
        async with self.lock:
            for value in records_of(batch.records, "rollups"):
                try:
                    minute = decode_rollup(value)
                except msgspec.DecodeError as exc:
                    self.skipped += 1
                    log.warning("rollups: skipping undecodable room minute: %s", exc)
                    continue
                region = self.regions.get(minute.region)
                if region is None:
                    region = RegionRollups(minute.region)
                out.extend(region.apply(minute))
                self.regions[minute.region] = region
            await self._publish(latest_of_each_minute(out), to_regions=False)
            await self.regions.flush_batched(self.producer)

    async def _publish(self, minutes: list[MinuteRollup], *, to_regions: bool) -> None:
        """Each minute to the rollups topic (and, for room minutes, bundled to the region
        stage); waits for the broker's acks, so the caller persists states only after."""
        if not minutes:
            return
        records: list[Record] = []
        to_region: list[tuple[int, bytes]] = []
        partition_of = self.partition_of
        for minute in minutes:
            key = f"{minute.scope}:{minute.scope_id}"
            value = minute.encode()
            records.append((self.rollups_topic, partition_of(key), key.encode(), value))
            if to_regions:
                to_region.append((partition_of(minute.region), value))
        records.extend(bundled(self.by_region, to_region))
        self.emitted += len(minutes)
        await asyncio.gather(*await self.producer.send(records))


def levels_by_room_topic(settings: Settings) -> str:
    """The internal topic of the room stage: level events, bundled, by room partition."""
    return f"{settings.app_id}-levels-by-room"
