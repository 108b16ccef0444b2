"""The rollups stages: level changes -> per-minute room and region aggregates.

Two keyed stages, each with its state in a changelog-backed table:

1. level events (keyed by participant) are re-keyed by room onto an internal topic;
2. the room stage folds them into :class:`RoomRollups` (the step-function rules live in
   ``pipelines.quality.rollups``) and publishes each closed (or corrected) room minute to
   ``netquality.rollups.v1`` and, keyed by region, to an internal topic;
3. the region stage sums room minutes into :class:`RegionRollups` and publishes region minutes.

Minutes close on *event time*: a :class:`StreamClock` over the level events' own timestamps,
less the allowed lateness. While events flow it is where the stream is, so replaying old data
closes its minutes in order instead of dropping it as late; when they stop it moves on with
the wall clock, minute by minute, so the last minutes of a call close too. A timer applies it
to every room, since a quiet room's own events would never close a minute. Presence ends at a
participant's ``departed`` event, which the levels agent emits on leaving or expiry, so a
quiet room emits a bounded number of minutes.
Re-emitted minutes carry the same key with a higher ``revision``; the sink upserts, so nothing
is counted twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any

import faust

from pipelines.config import Settings
from pipelines.contracts import ContractError, decode_level
from pipelines.quality.rollups import (
    DEFAULT_ALLOWED_LATENESS_MS,
    MinuteRollup,
    RegionRollups,
    RoomRollups,
    decode_rollup,
    dump_region,
    dump_room,
    load_region,
    load_room,
)
from pipelines.streaming.clock import StreamClock
from pipelines.streaming.declare import raw_topic, table_states
from pipelines.streaming.intake import OrderedIntake, run_batches
from pipelines.streaming.levels import BATCH_SIZE, BATCH_WITHIN_S
from pipelines.streaming.states import ChangelogStates

log = logging.getLogger(__name__)

ADVANCE_INTERVAL_S = 5.0


class RollupsProcessor:
    """The room and region stages' logic; the Faust wiring is in :func:`attach_rollups`."""

    def __init__(
        self,
        rooms: ChangelogStates[RoomRollups],
        regions: ChangelogStates[RegionRollups],
        by_room: faust.TopicT,
        by_region: faust.TopicT,
        rollups_topic: faust.TopicT,
    ) -> None:
        self.rooms = rooms
        self.regions = regions
        self.by_room = by_room
        self.by_region = by_region
        self.rollups_topic = rollups_topic
        self.clock = StreamClock()
        """Event time of the level stream (see the module docstring)."""
        self.lock = asyncio.Lock()
        self.emitted = 0

    async def rekey(self, events: list[faust.EventT]) -> None:
        """Level events keyed by participant -> the same bytes keyed by room."""
        pending: list[Awaitable[Any]] = []
        for event in events:
            value = event.message.value
            if value is None:  # tombstones belong to the current-levels topic only
                continue
            try:
                level = decode_level(value)
            except ContractError as exc:
                log.warning("rollups: skipping undecodable level event: %s", exc)
                continue
            pending.append(await self.by_room.send(key=level.room_sid.encode(), value=value))
        if pending:
            await asyncio.gather(*pending)

    async def rooms_batch(self, events: list[faust.EventT]) -> None:
        """Fold level events into their rooms; publish the minutes that closed or changed."""
        out: list[MinuteRollup] = []
        async with self.lock:
            for event in events:
                level = decode_level(event.message.value)
                self.clock.observe(level.timestamp, time.time())
                room = self.rooms.get(level.room_sid)
                if room is None:
                    room = RoomRollups.for_event(level)
                out.extend(room.apply(level))
                self.rooms[level.room_sid] = room
            await self._publish_rooms(out)
            self.rooms.flush()

    async def advance_quiet_rooms(self) -> None:
        """Close the minutes of rooms whose own events stopped, at the stream's watermark."""
        now = self.clock.now(time.time())
        if not now:
            return
        out: list[MinuteRollup] = []
        async with self.lock:
            watermark = now - DEFAULT_ALLOWED_LATENESS_MS
            for room_sid in list(self.rooms):
                room = self.rooms[room_sid]
                closed = room.advance(watermark)
                if closed:
                    out.extend(closed)
                    self.rooms[room_sid] = room
            await self._publish_rooms(out)
            self.rooms.flush()

    async def regions_batch(self, events: list[faust.EventT]) -> None:
        """Sum room minutes into their regions; publish the region minutes that changed."""
        pending: list[Awaitable[Any]] = []
        async with self.lock:
            for event in events:
                minute = decode_rollup(event.message.value)
                region = self.regions.get(minute.region)
                if region is None:
                    region = RegionRollups(minute.region)
                for summed in region.apply(minute):
                    pending.append(await self._send(summed))
                self.regions[minute.region] = region
            if pending:
                await asyncio.gather(*pending)
            self.regions.flush()

    async def _publish_rooms(self, minutes: list[MinuteRollup]) -> None:
        pending: list[Awaitable[Any]] = []
        for minute in minutes:
            pending.append(await self._send(minute))
            pending.append(
                await self.by_region.send(key=minute.region.encode(), value=minute.encode())
            )
        if pending:
            await asyncio.gather(*pending)

    async def _send(self, minute: MinuteRollup) -> Awaitable[Any]:
        self.emitted += 1
        key = f"{minute.scope}:{minute.scope_id}".encode()
        return await self.rollups_topic.send(key=key, value=minute.encode())


def attach_rollups(app: faust.App, settings: Settings) -> RollupsProcessor:
    """Declare the rollup topics, tables, agents and timer on ``app``."""

    def topic(name: str, *, internal: bool = False) -> faust.TopicT:
        return raw_topic(app, settings, name, internal=internal)

    levels = topic(settings.topic_levels)
    by_room = topic(f"{settings.app_id}-levels-by-room", internal=True)
    by_region = topic(f"{settings.app_id}-rollups-by-region", internal=True)

    def states(name: str, source: faust.TopicT, dump: Any, load: Any) -> ChangelogStates[Any]:
        return table_states(app, settings, name, source, dump, load)

    processor = RollupsProcessor(
        states("room-rollups", by_room, dump_room, load_room),
        states("region-rollups", by_region, dump_region, load_region),
        by_room,
        by_region,
        topic(settings.topic_rollups),
    )

    @app.agent(levels, name="rollups-rekey")
    async def rekey(stream: faust.StreamT) -> None:
        await run_batches(
            OrderedIntake(app, "rollups-rekey"), stream, processor.rekey,
            size=BATCH_SIZE, within=BATCH_WITHIN_S,
        )  # fmt: skip

    @app.agent(by_room, name="rollups-rooms")
    async def rooms(stream: faust.StreamT) -> None:
        await run_batches(
            OrderedIntake(app, "rollups-rooms"), stream, processor.rooms_batch,
            size=BATCH_SIZE, within=BATCH_WITHIN_S,
        )  # fmt: skip

    @app.agent(by_region, name="rollups-regions")
    async def regions(stream: faust.StreamT) -> None:
        await run_batches(
            OrderedIntake(app, "rollups-regions"), stream, processor.regions_batch,
            size=BATCH_SIZE, within=BATCH_WITHIN_S,
        )  # fmt: skip

    @app.timer(interval=ADVANCE_INTERVAL_S)
    async def advance() -> None:
        if app.tables.recovery.completed.is_set() and not app.rebalancing:
            await processor.advance_quiet_rooms()

    del rekey, rooms, regions, advance
    return processor
