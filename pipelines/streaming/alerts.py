"""The alerting stages: level changes -> room, participant and region alerts.

Like the rollups, two keyed stages with their state in changelog-backed tables:

1. the levels agent routes its level events by room onto an internal topic, bundled
   (``pipelines/streaming/bundles.py``);
2. the room stage folds them into :class:`RoomAlerts` (rules in ``pipelines.quality.alerting``)
   and publishes room and participant alerts to ``netquality.alerts.v1`` keyed by ``roomSid``;
   whenever a room's counts change it hands a :class:`RoomSummary` to an internal topic,
   bundled by region partition;
3. the region stage sums them into :class:`RegionAlerts` and publishes region alerts keyed by
   region.

Order per batch: alerts are sent and acknowledged by the broker, *then* the states are written
to their tables. A crash in between replays the batch: the same transitions recur at the same
event times, so they carry the same ``alertId`` and the sink's upsert absorbs them. A restart
restores the tables from their changelogs, so an open alert stays open (never reopened) and
still resolves.

"Sustained for 15 s" must be noticed when nothing arrives: a timer advances every room and
region to its partition's :class:`StreamClock` (the stream times the levels agent stamps
while events flow, the wall clock once they stop). As in the rollups, an event whose own
(client) time is too far from that clock is dropped and counted
(:func:`~pipelines.streaming.clock.admit`), and a new room starts at the stream's watermark,
so no alert opens in the past or the future of the stream. Only recently written rooms stay
decoded (:data:`~pipelines.streaming.levels.ROOM_STATES_KEPT`); the timer reads the others'
bytes through
``pipelines.quality.alerting_due`` and decodes only the rooms with something due, and a room
decoded again catches up with the sweeps it missed
(:class:`~pipelines.streaming.missed_sweeps.MissedSweeps`), so every output and state is
what it would be with every room decoded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import msgspec

from pipelines.config import Settings
from pipelines.contracts import AlertEvent, encode
from pipelines.observability import METRICS
from pipelines.quality.alerting import (
    AlertRules,
    RegionAlerts,
    RoomAlerts,
    RoomSummary,
    decode_summary,
    load_alert_rules,
)
from pipelines.quality.alerting_due import RoomAlertsDue
from pipelines.quality.event_time import EventTimeBounds, Verdict, describe
from pipelines.quality.room_level import RoomLevel, decode_room_level
from pipelines.streaming.bundles import bundled, records_of
from pipelines.streaming.clock import DEFAULT_BOUNDS, StreamClock, admit
from pipelines.streaming.levels import PartitionOf
from pipelines.streaming.missed_sweeps import MissedSweeps, catch_up_on_decode
from pipelines.streaming.stage import Emitter, InputBatch, KeyedStates, Record

log = logging.getLogger(__name__)


ADVANCE_INTERVAL_S = 1.0
"""How often quiet rooms and regions are advanced: the lateness of a "sustained" transition
when no events arrive (the event itself carries the exact due time)."""


def alert_rules(settings: Settings) -> AlertRules:
    """The rules in force: defaults, then the rules file, then the single-field settings."""
    return load_alert_rules(
        settings.alert_rules_file,
        {
            "room.min_share": settings.alert_room_min_share,
            "room.sustain_s": settings.alert_room_sustain_s,
            "room.resolve_after_s": settings.alert_room_resolve_s,
            "region.min_share": settings.alert_region_min_share,
            "region.min_degraded": settings.alert_region_min_degraded,
            "participant.sustain_s": settings.alert_stuck_sustain_s,
        },
    )


@dataclass
class AlertCounts:
    """What the stages have done since start (for logs and tests)."""

    level_events: int = 0
    opened: int = 0
    updated: int = 0
    resolved: int = 0
    skipped: int = 0
    out_of_bounds: Counter[str] = field(default_factory=Counter)
    """Level events dropped by their time: ``late`` and ``ahead`` (see :func:`admit`)."""


class AlertsProcessor:
    """The room and region stages' logic; the Faust wiring is
    :func:`pipelines.streaming.faust.wiring.attach_alerts`."""

    def __init__(
        self,
        rules: AlertRules,
        rooms: KeyedStates[RoomAlerts],
        regions: KeyedStates[RegionAlerts],
        by_region: str,
        alerts_topic: str,
        producer: Emitter,
        partitions: int,
        partition_of: PartitionOf | None = None,
        bounds: EventTimeBounds = DEFAULT_BOUNDS,
    ) -> None:
        self.rules = rules
        self.bounds = bounds
        if partition_of is None:
            partition_of = PartitionOf(partitions)
        self.partition_of = partition_of
        self.rooms = rooms
        self.regions = regions
        self.by_region = by_region
        self.alerts_topic = alerts_topic
        self.producer = producer
        self.room_clocks: dict[int, StreamClock] = {}
        self.region_clocks: dict[int, StreamClock] = {}
        """Event time per partition of the keyed stages: a partition's records are in order,
        but partitions drain a backlog at different speeds, so one clock for all would push
        a room still behind in its partition past events it has not read yet."""
        self.lock = asyncio.Lock()
        self.counts = AlertCounts()
        self.missed = MissedSweeps()
        if rooms is not None:  # the room states decoded again catch up with the sweeps
            catch_up_on_decode(rooms, self._catch_up)

    def _catch_up(self, room: RoomAlerts) -> None:
        """A room decoded from its table bytes, advanced as the sweeps it missed would have."""
        seen = self.missed.seen(self._partition(room.room_sid), room.room_sid)
        if seen and room.catch_up(seen, self.rules):
            log.error("alerts: room %s had alerts due at a sweep it missed", room.room_sid)

    def forget_cache(self) -> None:
        """After a rebalance the tables are the truth: drop decoded copies (and their sweeps)."""
        self.rooms.forget_cache()
        self.regions.forget_cache()
        self.missed.clear()

    async def rooms_batch(self, batch: InputBatch) -> None:
        """Fold level events into their rooms; publish the alerts and summaries due."""
        alerts: list[AlertEvent] = []
        summaries: list[RoomSummary] = []
        async with self.lock:
            for record in batch.records:
                clock = self._clock(self.room_clocks, record.partition)
                for value in records_of((record,), "alerts"):
                    try:
                        level = decode_room_level(value)
                    except msgspec.DecodeError as exc:
                        self.counts.skipped += 1
                        log.warning("alerts: skipping undecodable level event: %s", exc)
                        continue
                    self.counts.level_events += 1
                    wall = time.time()
                    verdict = admit(clock, level, self.bounds, wall)
                    if verdict != "accepted":
                        self._count(verdict, level)
                        continue
                    room = self.rooms.get(level.room_sid)
                    if room is None:
                        # A new room starts at the stream's watermark, so an event before it
                        # is applied at it: no alert opens before the room was seen.
                        at = self._watermark(clock, wall)
                        room = RoomAlerts(level.room_sid, level.region, at)
                        self.missed.created(self._partition(level.room_sid), level.room_sid)
                    out, summary = room.apply(level, self.rules)
                    alerts.extend(out)
                    if summary is not None:
                        summaries.append(summary)
                    self._store_room(room)
            await self._publish(alerts, summaries)
            await self.rooms.flush_batched(self.producer)

    async def regions_batch(self, batch: InputBatch) -> None:
        """Sum room summaries into their regions; publish the region alerts due."""
        alerts: list[AlertEvent] = []
        async with self.lock:
            for record in batch.records:
                clock = self._clock(self.region_clocks, record.partition)
                for value in records_of((record,), "alerts"):
                    try:
                        summary = decode_summary(value)
                    except msgspec.DecodeError as exc:
                        self.counts.skipped += 1
                        log.warning("alerts: skipping undecodable room summary: %s", exc)
                        continue
                    clock.observe(summary.timestamp, time.time())
                    region = self.regions.get(summary.region) or RegionAlerts(summary.region)
                    alerts.extend(region.apply(summary, self.rules))
                    self._store_region(region)
            await self._publish(alerts, [])
            await self.regions.flush_batched(self.producer)

    async def advance(self) -> None:
        """Apply the stream's clock to every room and region (quiet ones included)."""
        wall = time.time()
        alerts: list[AlertEvent] = []
        async with self.lock:
            summaries: list[RoomSummary] = []
            work, nows = self._rooms_to_advance(wall)
            step = self.rooms.keep_decoded or len(work)
            for i, (room_sid, now) in enumerate(work):
                if i and i % step == 0:  # at most a cache's worth decoded at once
                    await self._publish(alerts, summaries)
                    await self.rooms.flush_batched(self.producer)
                    alerts, summaries = [], []
                room = self.rooms[room_sid]
                held = len(room.pending)
                out, summary = room.advance(now, self.rules)
                alerts.extend(out)
                if summary is not None:
                    summaries.append(summary)
                if out or summary is not None or len(room.pending) != held:
                    self._store_room(room)
            for partition, now in nows.items():  # after the decoding above: see _catch_up
                self.missed.swept(partition, now)
            for region_id in list(self.regions):
                clock = self.region_clocks.get(self._partition(region_id))
                now = clock.now(wall) if clock else 0
                region = self.regions.get(region_id)
                if not now or region is None:
                    continue
                out = region.advance(now, self.rules)
                if out:
                    alerts.extend(out)
                    self._store_region(region)
            await self._publish(alerts, summaries)
            await self.rooms.flush_batched(self.producer)
            await self.regions.flush_batched(self.producer)

    def _rooms_to_advance(self, wall: float) -> tuple[list[tuple[str, int]], dict[int, int]]:
        """(room, stream time) of the decoded rooms and of the others with something due, in
        room order; and the stream time of each partition with a clock."""
        nows: dict[int, int] = {}
        for partition, clock in self.room_clocks.items():
            now = clock.now(wall)
            if now:
                nows[partition] = now
        rules, partition_of = self.rules, self._partition
        lateness = int(rules.allowed_lateness_s * 1000)
        watermarks = {partition: now - lateness for partition, now in nows.items()}
        work: list[tuple[str, int]] = []
        for room_sid, state in self.rooms.scan():
            partition = partition_of(room_sid)
            watermark = watermarks.get(partition)
            if watermark is None:
                continue
            if type(state) is not RoomAlertsDue or state.due(watermark, rules):
                work.append((room_sid, nows[partition]))
        work.sort()
        return work, nows

    def _watermark(self, clock: StreamClock, wall: float) -> int:
        """Stream time less the allowed lateness: where a partition's rooms have got to."""
        return max(0, clock.now(wall) - int(self.rules.allowed_lateness_s * 1000))

    def _count(self, verdict: Verdict, level: RoomLevel) -> None:
        """Count a level event dropped by its time; log the first of each kind and then
        every power of two (one wrong clock sends an event per level change)."""
        n = self.counts.out_of_bounds[verdict] = self.counts.out_of_bounds[verdict] + 1
        METRICS.out_of_bounds.labels(stage="alerts", verdict=verdict).inc()
        if n & (n - 1) == 0:
            log.warning(
                "alerts: dropped %d level event(s) %s, the last %s (client time %d, stream"
                " time %s): is that client's clock wrong?", n, describe(verdict, self.bounds),
                level.event_id, level.timestamp, level.stream_time,
            )  # fmt: skip

    def _partition(self, key: str) -> int:
        return self.partition_of(key)

    @staticmethod
    def _clock(clocks: dict[int, StreamClock], partition: int) -> StreamClock:
        clock = clocks.get(partition)
        if clock is None:
            clock = clocks[partition] = StreamClock()
        return clock

    def _store_room(self, room: RoomAlerts) -> None:
        if room.is_idle:
            self.rooms.pop(room.room_sid, None)
        else:
            self.rooms[room.room_sid] = room

    def _store_region(self, region: RegionAlerts) -> None:
        if region.is_idle:
            self.regions.pop(region.region, None)
        else:
            self.regions[region.region] = region

    async def _publish(self, alerts: list[AlertEvent], summaries: list[RoomSummary]) -> None:
        """Send, then wait for the broker's acks (the caller writes state only after)."""
        records: list[Record] = []
        for alert in alerts:
            key = (alert.room_sid if alert.kind != "region_degraded" else None) or alert.region
            records.append((self.alerts_topic, self._partition(key), key.encode(), encode(alert)))
            setattr(self.counts, alert.status, getattr(self.counts, alert.status) + 1)
            log.info("alert %s %s: %s", alert.status, alert.alert_id, alert.message)
        records.extend(
            bundled(self.by_region, ((self._partition(s.region), s.encode()) for s in summaries))
        )
        if records:
            await asyncio.gather(*await self.producer.send(records))


def levels_by_room_topic(settings: Settings) -> str:
    """The internal topic of the room stage: level events, bundled, by room partition."""
    return f"{settings.app_id}-alerts-levels-by-room"
