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

Both are floors of the generic room stage (:mod:`pipelines.streaming.room_stage`), driving the
pure logic of ``pipelines.quality.alerting.logic``; this module is their configuration and
output encoding. "Sustained for 15 s" must be noticed when nothing arrives: a timer advances
every room and region to its partition's :class:`StreamClock` (the stream times the levels
agent stamps while events flow, the wall clock once they stop). As in the rollups, an event
whose own (client) time is too far from that clock is dropped and counted
(:func:`~pipelines.streaming.clock.admit`), and a new room starts at the stream's watermark,
so no alert opens in the past or the future of the stream. Only recently written rooms stay
decoded (:data:`~pipelines.streaming.levels.ROOM_STATES_KEPT`); the timer reads the others'
bytes through
``pipelines.quality.alerting.due`` and decodes only the rooms with something due, and a room
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
from typing import Any

from pipelines.config import Settings
from pipelines.contracts import AlertEvent, encode
from pipelines.quality.alerting import (
    AlertRules,
    RoomSummary,
    decode_summary,
    load_alert_rules,
)
from pipelines.quality.alerting.due import RoomAlertsDue
from pipelines.quality.alerting.logic import (
    RegionAlertsKind,
    RegionAlertsLogic,
    RoomAlertsKind,
    RoomAlertsLogic,
)
from pipelines.quality.event_time import EventTimeBounds, Verdict
from pipelines.quality.room.level import decode_room_level
from pipelines.streaming.bundles import bundled
from pipelines.streaming.clock import DEFAULT_BOUNDS, StreamClock, admit
from pipelines.streaming.levels import PartitionOf
from pipelines.streaming.room_stage import Floor, RoomStage
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
    """The room and region stages' configuration; the Faust wiring is
    :func:`pipelines.streaming.faust.wiring.attach_alerts`."""

    def __init__(
        self,
        rules: AlertRules,
        rooms: KeyedStates[Any],
        regions: KeyedStates[Any],
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
        self.lock = asyncio.Lock()
        self.counts = AlertCounts()
        lateness = int(rules.allowed_lateness_s * 1000)
        room_floor: Floor[Any, Any] = Floor(
            "alerts", "level event", RoomAlertsKind(rules), decode_room_level,
            lambda room: RoomAlertsLogic(room, rules), self._publish,
            admit=lambda clock, level, wall: admit(clock, level, self.bounds, wall),
            due=lambda peek, now: peek.due(now - lateness, rules), peek_type=RoomAlertsDue,
            catch_up=lambda logic, now: logic.state.catch_up(now, rules),
            touched=lambda logic: len(logic.state.pending),
            restored_time=lambda state: getattr(state, "state", state).clock_ms + lateness,
        )  # fmt: skip
        region_floor: Floor[RoomSummary, Any] = Floor(
            "alerts", "room summary", RegionAlertsKind(rules), decode_summary,
            lambda region: RegionAlertsLogic(region, rules), self._publish, admit=_observe,
        )  # fmt: skip
        wall = _wall
        self.room_stage = RoomStage(
            room_floor, rooms, producer, partition_of, bounds, self.lock, wall,
            self.counts.out_of_bounds,
        )  # fmt: skip
        self.region_stage = RoomStage(
            region_floor, regions, producer, partition_of, bounds, self.lock, wall
        )

    @property
    def room_clocks(self) -> dict[int, StreamClock]:
        """Event time per partition of the room stage (the clock policy: room_stage.py)."""
        return self.room_stage.clocks

    @property
    def region_clocks(self) -> dict[int, StreamClock]:
        return self.region_stage.clocks

    def forget_cache(self) -> None:
        """After a rebalance the tables are the truth: drop decoded copies (and their sweeps)."""
        self.room_stage.forget_cache()
        self.region_stage.forget_cache()

    async def rooms_batch(self, batch: InputBatch) -> None:
        """Fold level events into their rooms; publish the alerts and summaries due."""
        await self.room_stage.batch(batch)
        self._recount()

    async def regions_batch(self, batch: InputBatch) -> None:
        """Sum room summaries into their regions; publish the region alerts due."""
        await self.region_stage.batch(batch)
        self._recount()

    async def advance(self) -> None:
        """Apply each partition's clock to its rooms and regions (quiet ones included)."""
        async with self.lock:
            await self.room_stage.advance()
            await self.region_stage.advance()

    def _recount(self) -> None:
        self.counts.level_events = self.room_stage.read
        self.counts.skipped = self.room_stage.skipped + self.region_stage.skipped

    async def _publish(self, outputs: list[AlertEvent | RoomSummary]) -> None:
        """Send, then wait for the broker's acks (the caller writes state only after)."""
        records: list[Record] = []
        summaries: list[RoomSummary] = []
        for alert in outputs:
            if isinstance(alert, RoomSummary):
                summaries.append(alert)
                continue
            key = (alert.room_sid if alert.kind != "region_degraded" else None) or alert.region
            records.append((self.alerts_topic, self.partition_of(key), key.encode(), encode(alert)))
            setattr(self.counts, alert.status, getattr(self.counts, alert.status) + 1)
            log.info("alert %s %s: %s", alert.status, alert.alert_id, alert.message)
        records.extend(
            bundled(self.by_region, ((self.partition_of(s.region), s.encode()) for s in summaries))
        )
        if records:
            await asyncio.gather(*await self.producer.send(records))


def _observe(clock: StreamClock, summary: RoomSummary, wall: float) -> Verdict:
    """A room summary carries its room's time: it moves its region partition's clock."""
    clock.observe(summary.timestamp, wall)
    return "accepted"


def _wall() -> float:
    """The wall clock, read through this module's ``time`` (a test injects a clock there)."""
    return time.time()


def levels_by_room_topic(settings: Settings) -> str:
    """The internal topic of the room stage: level events, bundled, by room partition."""
    return f"{settings.app_id}-alerts-levels-by-room"
