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

Both are floors of the generic room stage (:mod:`pipelines.streaming.room_stage`), driving the
pure logic of ``pipelines.quality.rollups.logic``; this module is their configuration and
output encoding. Minutes close on *event time*: the room's partition's :class:`StreamClock`
(one per partition, never one for all: docs/architecture.md, "The room stage") over the
stream times the levels agent stamps on its events (when the sample behind each reached the
stream; a client's own clock may be years off), less the allowed lateness. While events flow
it is where the stream is, so replaying old data closes its minutes in order instead of
dropping it as late; when they stop it moves on with the wall clock, minute by minute, so the
last minutes of a call close too.
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
others' bytes through ``pipelines.quality.rollups.due`` and decodes only rooms that can close
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
from typing import Any

from pipelines.config import Settings
from pipelines.quality.event_time import EventTimeBounds
from pipelines.quality.rollups import (
    MinuteRollup,
    RegionRollups,
    decode_rollup,
    dump_region,
    latest_of_each_minute,
    load_region,
)
from pipelines.quality.rollups.due import RoomRollupsDue
from pipelines.quality.rollups.logic import (
    RegionRollupsKind,
    RegionRollupsLogic,
    RoomRollupsKind,
    RoomRollupsLogic,
)
from pipelines.quality.room.level import decode_room_level
from pipelines.streaming.bundles import bundled
from pipelines.streaming.clock import DEFAULT_BOUNDS, admit
from pipelines.streaming.levels import PartitionOf
from pipelines.streaming.room_stage import Floor, RoomStage
from pipelines.streaming.stage import Emitter, InputBatch, KeyedStates, Record

log = logging.getLogger(__name__)

ADVANCE_INTERVAL_S = 5.0


def _restored_time(state: Any) -> int:
    """The stream time a stored room had reached: its watermark plus its lateness."""
    room = getattr(state, "state", state)
    return 0 if room.watermark_ms is None else room.watermark_ms + room.allowed_lateness_ms


class RollupsProcessor:
    """The room and region stages' configuration; the Faust wiring is
    :func:`pipelines.streaming.faust.wiring.attach_rollups`."""

    def __init__(
        self,
        rooms: KeyedStates[Any],
        regions: KeyedStates[Any],
        by_region: str,
        rollups_topic: str,
        producer: Emitter,
        partitions: int,
        partition_of: PartitionOf | None = None,
        bounds: EventTimeBounds = DEFAULT_BOUNDS,
    ) -> None:
        self.by_region = by_region
        self.rollups_topic = rollups_topic
        self.producer = producer
        if partition_of is None:
            partition_of = PartitionOf(partitions)
        self.partition_of = partition_of
        self.bounds = bounds
        self.out_of_bounds: Counter[str] = Counter()
        """Level events dropped by their time: ``late`` and ``ahead`` (see :func:`admit`)."""
        self.lock = asyncio.Lock()
        self.emitted = 0
        room_floor: Floor[Any, MinuteRollup] = Floor(
            "rollups", "level event", RoomRollupsKind(), decode_room_level, RoomRollupsLogic,
            self._publish_rooms,
            admit=lambda clock, level, wall: admit(clock, level, self.bounds, wall),
            due=lambda peek, now: peek.due(now - peek.allowed_lateness_ms),
            peek_type=RoomRollupsDue, catch_up=lambda logic, now: logic.advance(now),
            restored_time=_restored_time,
        )  # fmt: skip
        region_floor: Floor[MinuteRollup, MinuteRollup] = Floor(
            "rollups", "room minute", RegionRollupsKind(), decode_rollup, RegionRollupsLogic,
            self._publish_regions, timed=False,
        )  # fmt: skip
        wall = _wall
        self.room_stage = RoomStage(
            room_floor, rooms, producer, partition_of, bounds, self.lock, wall, self.out_of_bounds
        )
        self.region_stage = RoomStage(
            region_floor, regions, producer, partition_of, bounds, self.lock, wall
        )
        self.rooms = rooms
        self.regions = regions

    @property
    def skipped(self) -> int:
        return self.room_stage.skipped + self.region_stage.skipped

    def forget_cache(self) -> None:
        """After a rebalance the tables are the truth: drop decoded copies (and their sweeps)."""
        self.room_stage.forget_cache()
        self.region_stage.forget_cache()

    async def rooms_batch(self, batch: InputBatch) -> None:
        """Fold level events into their rooms; publish the minutes that closed or changed."""
        await self.room_stage.batch(batch)

    async def regions_batch(self, batch: InputBatch) -> None:
        """Sum room minutes into their regions; publish the region minutes that changed."""
        await self.region_stage.batch(batch)

    async def advance_quiet_rooms(self) -> None:
        """Close the minutes of rooms whose own events stopped, at their partition's watermark."""
        async with self.lock:
            await self.room_stage.advance()

    async def flush_open_minutes(self, owns_region: Callable[[str], bool]) -> int:
        """On a graceful stop: publish every room's open minute as it stands at its
        partition's stream clock (``RoomRollups.open_minutes``): what the timer would close if
        the minute ended now (level events come only on changes, so the newest one read is no
        measure of how long anyone stayed); returns how many room minutes.

        The states are not changed, so a restart closes these minutes as usual and their full
        versions replace them (the sink upserts by minute). A region this worker holds gets
        its partial minute from a copy of its state (the copy is dropped, for the same
        reason); the room minutes of a region held elsewhere go to that region's stage.
        """
        async with self.lock:
            rooms = self.room_stage.at_stop(time.time())
            if not rooms:
                return 0
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
                        else load_region(dump_region(held.state))
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

    async def _publish_rooms(self, minutes: list[MinuteRollup]) -> None:
        await self._publish(minutes, to_regions=True)

    async def _publish_regions(self, minutes: list[MinuteRollup]) -> None:
        await self._publish(latest_of_each_minute(minutes), to_regions=False)

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


def _wall() -> float:
    """The wall clock, read through this module's ``time`` (a test injects a clock there)."""
    return time.time()


def levels_by_room_topic(settings: Settings) -> str:
    """The internal topic of the room stage: level events, bundled, by room partition."""
    return f"{settings.app_id}-levels-by-room"
