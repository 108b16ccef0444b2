"""The room stages with only a few rooms decoded behave exactly as with every room decoded.

Alerts and rollups keep the most recently written rooms decoded (``ROOM_STATES_KEPT``); their
timers read the other rooms' bytes through a peek (``alerting.due``, ``rollups.due``), decode
only rooms with something due, and a room decoded again catches up with the sweeps it missed
(``MissedSweeps``). Over random level events, timer ticks (stream time going back as well as
forward) and rebalances, every published record and the final table bytes must be those of the
same stage with every room decoded.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

import pipelines.streaming.alerts as alerts_module
import pipelines.streaming.rollups as rollups_module
from pipelines.quality.alerting import (
    AlertRule,
    AlertRules,
    RoomAlerts,
    dump_region_alerts,
    dump_room_alerts,
    load_region_alerts,
    load_room_alerts,
)
from pipelines.quality.alerting.due import load_room_due as load_alerts_due
from pipelines.quality.rollups import (
    RoomRollups,
    dump_region,
    dump_room,
    load_region,
    load_room,
)
from pipelines.quality.rollups.due import load_room_due as load_rollups_due
from pipelines.quality.room.level import RoomLevel
from pipelines.streaming.alerts import AlertsProcessor
from pipelines.streaming.bundles import bundle, unbundle
from pipelines.streaming.levels import PartitionOf
from pipelines.streaming.missed_sweeps import MissedSweeps
from pipelines.streaming.rollups import RollupsProcessor
from pipelines.testing.stages import (
    InRecord,
    MemoryStates,
    RecordBatch,
    RecordingEmitter,
    StageClock,
    records,
)

PARTITIONS = 3
RULES = AlertRules(
    room=AlertRule(at_or_below=2, min_share=0.5, min_degraded=1, sustain_s=2.0,
                   resolve_after_s=3.0, reopen_cooldown_s=4.0),
    participant=AlertRule(at_or_below=1, min_share=1.0, min_degraded=1, sustain_s=3.0,
                          resolve_after_s=2.0, reopen_cooldown_s=5.0),
    update_interval_s=1.0,
    allowed_lateness_s=1.0,
)  # fmt: skip


def _states(dump, load, keep=None, peek=None) -> MemoryStates:
    return MemoryStates(dump, load, keep_decoded=keep, peek=peek)


def _events(levels: list[RoomLevel], partition_of: PartitionOf) -> RecordBatch:
    """One batch: a bundle per room partition, in order."""
    by_partition: dict[int, list[bytes]] = {}
    for level in levels:
        by_partition.setdefault(partition_of(level.room_sid), []).append(msgspec.json.encode(level))
    return RecordBatch([
        InRecord(value, partition=p, topic="t")
        for p, values in by_partition.items()
        for value in bundle(values)
    ])  # fmt: skip


def _script(seed: int, steps: int) -> list[tuple]:
    """Batches of level events around a wall clock, ticks, pauses, rebalances and restarts
    (a new processor over the same tables: nothing decoded, no clocks, no sweeps seen)."""
    rnd = random.Random(seed)
    rooms = [f"RM_{i}" for i in range(rnd.randint(2, 7))]
    people = {room: [f"PA_{room}_{j}" for j in range(rnd.randint(1, 4))] for room in rooms}
    wall = 1_000_000.0
    ops: list[tuple] = []
    n = 0
    for _ in range(steps):
        roll = rnd.random()
        if roll < 0.45:
            levels = []
            for _ in range(rnd.randint(1, 8)):
                room = rnd.choice(rooms)
                n += 1
                levels.append(RoomLevel(
                    event_id=f"ev{n}" if rnd.random() > 0.05 else f"ev{max(1, n - 3)}",
                    room_sid=room, participant_sid=rnd.choice(people[room]),
                    region=rnd.choice(["eu", "us"]),
                    timestamp=int(wall * 1000) - rnd.choice([0, 0, 300, 1500, 4000, 20000]),
                    level=rnd.choice([0, 1, 2, 2, 3, 4, 5]), departed=rnd.random() < 0.12,
                    limited_by=rnd.choice([None, "loss", "rtt"]),
                ))  # fmt: skip
            ops.append(("batch", levels, wall))
        elif roll < 0.9:
            ops.append(("tick", None, wall))
        elif roll < 0.95:
            ops.append(("rebalance", None, wall))
        elif roll < 0.98:
            ops.append(("restart", None, wall))
        wall += rnd.choice([0.2, 0.5, 1.0, 1.0, 2.0, 7.0, 30.0, 70.0])
    return ops


def _restarted(states: MemoryStates, load) -> MemoryStates:
    """The same table in a new worker: only its bytes are left."""
    return states.crash(load)


def _records(sent: list[tuple]) -> dict[tuple[str, int], list[tuple]]:
    """What each partition received, in order (what Kafka orders), bundles opened; the
    changelog records are left out: the final table bytes are compared instead (a sweep with
    more rooms due than the keep limit flushes in steps, so its bundles and state writes are
    split differently)."""
    out: dict[tuple[str, int], list[tuple]] = {}
    for topic, partition, key, value in sent:
        if topic == "changelog":
            continue
        values = unbundle(value) if topic == "by-region" else [value]
        out.setdefault((topic, partition), []).extend((key, v) for v in values)
    return out


@dataclass(frozen=True)
class _Stage:
    """What differs between the two room stages in these scripts."""

    module: Any
    room_codec: tuple[Callable, Callable]
    region_codec: tuple[Callable, Callable]
    peek: Callable
    start: Callable[[MemoryStates, MemoryStates, Any], Any]
    tick: str


ALERTS = _Stage(
    alerts_module, (dump_room_alerts, load_room_alerts), (dump_region_alerts, load_region_alerts),
    load_alerts_due,
    lambda rooms, regions, producer: AlertsProcessor(
        RULES, rooms, regions, "by-region", "alerts", producer, PARTITIONS
    ),
    "advance",
)  # fmt: skip
ROLLUPS = _Stage(
    rollups_module, (dump_room, load_room), (dump_region, load_region), load_rollups_due,
    lambda rooms, regions, producer: RollupsProcessor(
        rooms, regions, "by-region", "rollups", producer, PARTITIONS
    ),
    "advance_quiet_rooms",
)  # fmt: skip


def _run(stage: _Stage, ops: list[tuple], keep: int | None) -> tuple[dict, dict, dict, int]:
    """The script through one stage: (records per partition, room table bytes, region table
    bytes, the most rooms held decoded at once)."""
    producer = RecordingEmitter()
    rooms = _states(*stage.room_codec, keep, stage.peek if keep is not None else None)
    regions = _states(*stage.region_codec)
    processor = stage.start(rooms, regions, producer)
    clock = StageClock(wall=1_000_000.0)
    loop = asyncio.new_event_loop()
    most = 0
    with mock.patch.object(stage.module, "time", clock):
        for op, levels, wall in ops:
            clock.wall = wall
            if op == "batch":
                events = _events(levels, processor.partition_of)
                loop.run_until_complete(processor.rooms_batch(events))
            elif op == "tick":
                loop.run_until_complete(getattr(processor, stage.tick)())
            elif op == "rebalance":
                processor.forget_cache()
            else:
                rooms = _restarted(rooms, stage.room_codec[1])
                regions = _restarted(regions, stage.region_codec[1])
                processor = stage.start(rooms, regions, producer)
            most = max(most, len(rooms._cache))
    loop.close()
    return _records(producer.sent), rooms.stored, regions.stored, most


def _assert_few_decoded_equal_all(stage: _Stage, seed: int, keep: int, regions: bool) -> None:
    """The same script with every room decoded and with at most ``keep``: the same records
    and room table bytes (and region table bytes, with ``regions``)."""
    ops = _script(seed, 80)
    records, room_bytes, region_bytes, _ = _run(stage, ops, None)
    kept_records, kept_room_bytes, kept_region_bytes, most = _run(stage, ops, keep)
    assert kept_records == records
    assert kept_room_bytes == room_bytes
    if regions:
        assert kept_region_bytes == region_bytes
    assert most <= keep  # after each batch or tick (flushed): only the kept states


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), keep=st.integers(0, 3))
def test_alerts_with_few_rooms_decoded_equal_every_room_decoded(seed, keep):
    _assert_few_decoded_equal_all(ALERTS, seed, keep, regions=True)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), keep=st.integers(0, 3))
def test_rollups_with_few_rooms_decoded_equal_every_room_decoded(seed, keep):
    _assert_few_decoded_equal_all(ROLLUPS, seed, keep, regions=False)


def test_the_scripts_exercise_alerts_and_minutes():
    """The equivalence above is not vacuous: the scripts open alerts and close minutes."""
    ops = _script(7, 200)
    records, *_ = _run(ALERTS, ops, None)
    alerts = [v for (topic, _), values in records.items() if topic == "alerts" for _, v in values]
    assert any(b'"opened"' in v for v in alerts)
    assert any(b'"resolved"' in v for v in alerts)
    minutes, *_ = _run(ROLLUPS, ops, None)
    assert sum(len(v) for (topic, _), v in minutes.items() if topic == "rollups") > 10


def test_a_sweep_decodes_only_the_rooms_with_something_due():
    producer = RecordingEmitter()
    loads = []

    def counting_load(data: bytes) -> RoomAlerts:
        loads.append(data)
        return load_room_alerts(data)

    rooms = _states(dump_room_alerts, counting_load, 0, load_alerts_due)
    regions = _states(dump_region_alerts, load_region_alerts)
    processor = AlertsProcessor(RULES, rooms, regions, "by-region", "alerts", producer, 1)
    clock = StageClock(wall=1_000_000.0)
    loop = asyncio.new_event_loop()
    wall_ms = int(clock.wall * 1000)
    levels = [
        RoomLevel(f"e{i}", f"RM_{i}", f"PA_{i}", "eu", wall_ms, 5 if i else 0) for i in range(50)
    ]
    with mock.patch.object(alerts_module, "time", clock):
        loop.run_until_complete(processor.rooms_batch(_events(levels, processor.partition_of)))
        assert len(rooms._cache) == 0
        for _ in range(3):  # the events are released (all rooms due), then nothing is due
            clock.wall += 1.0
            loop.run_until_complete(processor.advance())
        loads.clear()
        clock.wall += 1.0
        loop.run_until_complete(processor.advance())
        assert len(loads) == 1  # the stuck participant's room: its trackers are building up
        assert len(rooms.stored) == 50
    loop.close()


def test_missed_sweeps_since_a_rooms_creation():
    missed = MissedSweeps()
    assert missed.seen(0, "a") == 0
    missed.swept(0, 100)
    missed.created(0, "b")
    assert (missed.seen(0, "a"), missed.seen(0, "b")) == (100, 0)
    missed.swept(0, 90)  # stream time went back
    missed.created(0, "c")
    missed.swept(0, 80)
    assert (missed.seen(0, "a"), missed.seen(0, "b"), missed.seen(0, "c")) == (100, 90, 80)
    missed.swept(0, 85)
    assert (missed.seen(0, "b"), missed.seen(0, "c")) == (90, 85)
    missed.swept(0, 120)
    assert (missed.seen(0, "b"), missed.seen(0, "c"), missed.seen(1, "a")) == (120, 120, 0)
    missed.clear()
    assert missed.seen(0, "a") == 0


def _rollups_of_a_room_that_ends(keep: int | None) -> tuple[list[bytes], dict, list[dict]]:
    """One participant in one room for a minute, then it leaves; the timer ticks for five
    minutes. Returns (room minutes published, final room table, the table after each tick)."""
    producer = RecordingEmitter()
    rooms = _states(dump_room, load_room, keep, load_rollups_due if keep is not None else None)
    processor = RollupsProcessor(
        rooms, _states(dump_region, load_region), "by-region", "rollups", producer, 1
    )
    clock = StageClock(wall=1_000_000.0)
    clock.wall = 1_800_000.0  # 30:00, a minute boundary
    start = int(clock.wall * 1000)
    joined = RoomLevel("e1", "RM_1", "PA_1", "eu", start + 1_000, 4)
    left = RoomLevel("e2", "RM_1", "PA_1", "eu", start + 61_000, 0, departed=True)
    tables = []
    loop = asyncio.new_event_loop()
    with mock.patch.object(rollups_module, "time", clock):
        for level in (joined, left):
            loop.run_until_complete(processor.rooms_batch(_events([level], processor.partition_of)))
        for _ in range(60):
            clock.wall += 5.0
            loop.run_until_complete(processor.advance_quiet_rooms())
            tables.append(dict(rooms.stored))
    loop.close()
    minutes = [value for topic, _, _, value in producer.sent if topic == "rollups"]
    return minutes, rooms.stored, tables


def test_an_ended_room_is_deleted_once_its_minutes_are_past_correction():
    for keep in (None, 0):
        minutes, table, tables = _rollups_of_a_room_that_ends(keep)
        # Both minutes with the participant present were published (30:00 and 31:00).
        assert len(minutes) == 2, keep
        assert table == {}, keep  # the entry is gone (a tombstone went to the changelog)
        # ... but only after its closed minutes could no longer be corrected: it was kept
        # for the two minutes of allowed corrections after the last one closed.
        kept_for = sum(1 for t in tables if t)
        assert 2 * 60 / 5 <= kept_for <= 4 * 60 / 5, (keep, kept_for)


def test_a_room_holding_only_closed_minutes_is_due_when_a_minute_passes():
    """Say a late departure emptied a closed minute: the room has no steps left, only that
    minute, and must still be swept until it is pruned (then it is idle, and deleted)."""
    source = RoomRollups("RM_1", "eu")
    source.apply(RoomLevel("e1", "RM_1", "PA_1", "eu", 1_000, 4))
    (minute,) = source.advance(65_000)
    room = RoomRollups("RM_1", "eu", watermark_ms=65_000, closed={0: minute})
    due = load_rollups_due(dump_room(room))
    assert due.due(125_000)  # a new minute: its closed minute may be pruned
    assert not due.due(100_000)  # the same minute: advancing changes nothing
    room.advance(185_000)
    assert room.is_idle  # what the sweep then deletes
    empty = load_rollups_due(dump_room(RoomRollups("RM_2", "eu", watermark_ms=65_000)))
    assert not empty.due(125_000)


def test_minutes_closing_in_many_rooms_publish_each_region_minute_once():
    producer = RecordingEmitter()
    processor = RollupsProcessor(
        _states(dump_room, load_room, 0, load_rollups_due), _states(dump_region, load_region),
        "by-region", "rollups", producer, PARTITIONS,
    )  # fmt: skip
    clock = StageClock(wall=1_000_000.0)
    clock.wall = 1_800_000.0
    start = int(clock.wall * 1000)
    levels = [
        RoomLevel(f"e{i}", f"RM_{i}", f"PA_{i}", ["eu", "us"][i % 2], start + 1_000, 4)
        for i in range(60)
    ]
    loop = asyncio.new_event_loop()
    with mock.patch.object(rollups_module, "time", clock):
        loop.run_until_complete(processor.rooms_batch(_events(levels, processor.partition_of)))
        clock.wall += 66.0
        loop.run_until_complete(processor.advance_quiet_rooms())
        by_partition: dict[int, list[bytes]] = {}
        for topic, partition, _, value in producer.sent:
            if topic == "by-region":
                by_partition.setdefault(partition, []).append(value)
        producer.sent.clear()
        for partition, values in by_partition.items():  # one batch per partition
            loop.run_until_complete(processor.regions_batch(
                RecordBatch(records(values, partition=partition, topic="by-region"))
            ))  # fmt: skip
    loop.close()
    published = [msgspec.json.decode(v) for t, _, _, v in producer.sent if t == "rollups"]
    assert sorted(m["scopeId"] for m in published) == ["eu", "us"]  # not one per room minute
    assert {m["scopeId"]: m["participantsSeen"] for m in published} == {"eu": 30, "us": 30}
