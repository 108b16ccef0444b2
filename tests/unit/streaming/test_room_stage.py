"""The generic room stage (``pipelines/streaming/room_stage.py``) driven through the harness.

The streaming floor of the clock policy (docs/architecture.md, "The room stage"): two room
partitions, one drained far behind the other, must give each room what an even drain gives;
with one clock for all partitions (the rollups stage's old policy, rebuilt here by
:func:`_one_clock`) they do not. Then the stage's own promises: outputs acknowledged before
the states are flushed, a failed emit leaves nothing durable and its replay gives the same
outputs, idle keys are deleted, a stage restored from table bytes continues exactly, and a
restored partition that reads nothing still closes its rooms' minutes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import pytest

import pipelines.streaming.alerts as alerts_module
import pipelines.streaming.rollups as rollups_module
from pipelines.quality.alerting import (
    AlertRules,
    dump_region_alerts,
    dump_room_alerts,
    load_region_alerts,
    load_room_alerts,
)
from pipelines.quality.rollups import dump_region, dump_room, load_region, load_room
from pipelines.quality.rollups.due import load_room_due
from pipelines.quality.room.level import RoomLevel
from pipelines.streaming.alerts import AlertsProcessor
from pipelines.streaming.bundles import bundle
from pipelines.streaming.levels import PartitionOf
from pipelines.streaming.rollups import RollupsProcessor
from pipelines.streaming.room_stage import RoomStage
from pipelines.testing.stages import (
    InRecord,
    MemoryStates,
    RecordingEmitter,
    StageDriver,
    records,
)

T0 = int(datetime(2026, 12, 7, 10, 0, tzinfo=UTC).timestamp() * 1000)
S = 1000
PARTITIONS = 4
PARTITION_OF = PartitionOf(PARTITIONS)
AHEAD, BEHIND = "RM_ahead", "RM_behind"
AHEAD_LEVELS = [4, 5, 3, 4, 5, 4] * 6
"""Six minutes of a healthy room."""
BEHIND_LEVELS = [1, 4, 5, 4, 3, 5] * 6
"""Six minutes of a room bad for the first 10 s of every minute: never sustained."""

Policy = Literal["partition", "global"]


def history(room: str, levels: list[int]) -> list[RoomLevel]:
    """Two participants of ``room`` changing level together every 10 s, stamped with their
    stream time as the levels agent does."""
    return [
        RoomLevel(f"{room}-{p}-{i}", room, f"{room}-{p}", "eu", T0 + i * 10 * S, level,
                  stream_time=T0 + i * 10 * S)
        for i, level in enumerate(levels)
        for p in ("p1", "p2")
    ]  # fmt: skip


def reads(room: str, levels: list[int]) -> list[list[InRecord]]:
    """The room's partition as its reads take it: 10 s of records each, one bundle."""
    by_read: dict[int, list[bytes]] = defaultdict(list)
    for level in history(room, levels):
        by_read[(level.timestamp - T0) // (10 * S)].append(msgspec.json.encode(level))
    partition = PARTITION_OF(room)
    return [
        records(bundle(by_read[i]), partition=partition, topic="by-room") for i in sorted(by_read)
    ]


def even() -> list[list[InRecord]]:
    pairs = zip(reads(AHEAD, AHEAD_LEVELS), reads(BEHIND, BEHIND_LEVELS), strict=True)
    return [read for pair in pairs for read in pair]


def uneven() -> list[list[InRecord]]:
    """The behind partition's first read, then all of the other (six minutes ahead), then
    the rest of the behind one."""
    ahead, behind = reads(AHEAD, AHEAD_LEVELS), reads(BEHIND, BEHIND_LEVELS)
    return [behind[0], *ahead, *behind[1:]]


def _one_clock(stage: RoomStage[Any, Any]) -> None:
    """The old rollups policy on ``stage``: one clock for every partition (``_ALL``)."""
    one = stage._clock(0)
    stage._clock = lambda partition: one  # type: ignore[method-assign]
    stage.stream_times = lambda wall: (  # type: ignore[method-assign]
        dict.fromkeys(range(PARTITIONS), one.now(wall)) if one.now(wall) else {}
    )


def _rollups(emitter: RecordingEmitter, rooms: MemoryStates | None = None) -> RollupsProcessor:
    return RollupsProcessor(
        rooms if rooms is not None else MemoryStates(dump_room, load_room),
        MemoryStates(dump_region, load_region), "by-region", "rollups", emitter, PARTITIONS,
        PARTITION_OF,
    )  # fmt: skip


def _alerts(emitter: RecordingEmitter) -> AlertsProcessor:
    return AlertsProcessor(
        AlertRules(), MemoryStates(dump_room_alerts, load_room_alerts),
        MemoryStates(dump_region_alerts, load_region_alerts), "by-region", "alerts", emitter,
        PARTITIONS, PARTITION_OF,
    )  # fmt: skip


def _drain(stage: str, batches: list[list[InRecord]], policy: Policy) -> tuple[list[dict], Any]:
    """Each read through the room stage, then a timer tick, at one wall time (so each clock
    is exactly its partition's newest stream time): what the output topic received."""
    emitter = RecordingEmitter(PARTITIONS)
    module = rollups_module if stage == "rollups" else alerts_module
    with StageDriver(modules=(module,)) as driver:
        driver.clock.wall = T0 / 1000 + 3600
        processor: Any = _rollups(emitter) if stage == "rollups" else _alerts(emitter)
        if policy == "global":
            _one_clock(processor.room_stage)
        tick = processor.advance_quiet_rooms if stage == "rollups" else processor.advance
        driver.handle = processor.rooms_batch
        for batch in batches:
            driver.feed(batch)
            driver.run(tick())
    return [msgspec.json.decode(v) for _, _, _, v in emitter.to(stage)], processor


@pytest.mark.parametrize("policy", ["partition", "global"])
def test_rollups_of_an_uneven_backlog_equal_an_even_drains(policy: Policy) -> None:
    assert PARTITION_OF(AHEAD) != PARTITION_OF(BEHIND)
    even_minutes, _ = _drain("rollups", even(), "partition")
    minutes, processor = _drain("rollups", uneven(), policy)

    def of(room: str, out: list[dict]) -> list[dict]:
        return sorted((m for m in out if m["scopeId"] == room), key=lambda m: m["minute"])

    assert of(BEHIND, even_minutes) and all(m["revision"] == 0 for m in of(BEHIND, even_minutes))
    if policy == "partition":
        assert of(BEHIND, minutes) == of(BEHIND, even_minutes)
        assert of(AHEAD, minutes) == of(AHEAD, even_minutes)
        assert not processor.out_of_bounds
    else:  # the behind room's minutes closed on its first 10 s; the rest came too late
        assert of(BEHIND, minutes) != of(BEHIND, even_minutes)
        assert processor.out_of_bounds["late"] > 0


@pytest.mark.parametrize("policy", ["partition", "global"])
def test_alerts_of_an_uneven_backlog_open_none_an_even_drain_does_not(policy: Policy) -> None:
    even_alerts, _ = _drain("alerts", even(), "partition")
    alerts, processor = _drain("alerts", uneven(), policy)
    assert not [a for a in even_alerts if a.get("roomSid") == BEHIND]
    behind = [a for a in alerts if a.get("roomSid") == BEHIND]
    if policy == "partition":
        assert behind == [] and not processor.counts.out_of_bounds
    else:  # swept six minutes on while only its first 10 s were read
        assert ("room_degraded", "opened") in {(a["kind"], a["status"]) for a in behind}


def _levels(room: str, at_s: list[int], level: int = 3, departed: bool = False) -> list[InRecord]:
    values = [
        msgspec.json.encode(RoomLevel(f"{room}-{p}-{t}", room, f"{room}-{p}", "eu", T0 + t * S,
                                      level, departed=departed, stream_time=T0 + t * S))
        for t in at_s
        for p in ("p1", "p2")
    ]  # fmt: skip
    return records(bundle(values), partition=PARTITION_OF(room), topic="by-room")


def test_outputs_are_acknowledged_before_the_states_are_flushed() -> None:
    emitter = RecordingEmitter(PARTITIONS)
    with StageDriver(modules=(rollups_module,)) as driver:
        driver.clock.wall = T0 / 1000
        processor = _rollups(emitter)
        driver.handle = processor.rooms_batch
        driver.feed(_levels(AHEAD, [0, 10]))
        driver.feed(_levels(AHEAD, [70, 80]))  # closes minute 0
    topics = [t for t, *_ in emitter.acked]
    assert "rollups" in topics and "by-region" in topics
    last_output = max(i for i, t in enumerate(topics) if t != "changelog")
    assert topics[last_output + 1 :] == ["changelog"]  # the batch's state write comes after
    assert processor.rooms.changed() == 0


def test_a_failed_emit_leaves_nothing_durable_and_its_replay_gives_the_same_outputs() -> None:
    batches = [_levels(AHEAD, [0, 10]), _levels(AHEAD, [70, 80]), _levels(AHEAD, [140])]
    clean = RecordingEmitter(PARTITIONS)
    with StageDriver(modules=(rollups_module,)) as driver:
        driver.clock.wall = T0 / 1000
        processor = _rollups(clean)
        driver.handle = processor.rooms_batch
        for batch in batches:
            driver.feed(batch)

    emitter = RecordingEmitter(PARTITIONS)
    with StageDriver(modules=(rollups_module,)) as driver:
        driver.clock.wall = T0 / 1000
        processor = _rollups(emitter)
        driver.handle = processor.rooms_batch
        driver.feed(batches[0])
        durable = dict(processor.rooms.stored)
        emitter.fail_next()
        with pytest.raises(ConnectionError):
            driver.feed(batches[1])
        assert processor.rooms.stored == durable  # the failed batch changed nothing durable
        assert not driver.batches[-1].released
        restarted = processor.rooms.crash(load_room)
        processor = _rollups(emitter, restarted)
        driver.handle = processor.rooms_batch
        driver.feed(batches[1])  # the replay
        driver.feed(batches[2])
    outputs = [r for r in emitter.acked if r[0] == "rollups"]
    assert outputs == [r for r in clean.acked if r[0] == "rollups"]
    assert restarted.stored == processor.rooms.stored


def test_idle_rooms_are_deleted() -> None:
    emitter = RecordingEmitter(PARTITIONS)
    with StageDriver(modules=(rollups_module, alerts_module)) as driver:
        driver.clock.wall = T0 / 1000
        rollups, alerts = _rollups(emitter), _alerts(emitter)
        for handle in (rollups.rooms_batch, alerts.rooms_batch):
            driver.handle = handle
            driver.feed(_levels(AHEAD, [0, 10]))
            driver.feed(_levels(AHEAD, [20], departed=True))
        assert rollups.rooms.stored and alerts.rooms.stored
        for _ in range(10):  # quiet: minutes close, then pass their correction window
            driver.clock.advance(60.0)
            driver.run(rollups.advance_quiet_rooms())
            driver.run(alerts.advance())
    assert rollups.rooms.stored == {} and alerts.rooms.stored == {}
    assert emitter.to("rollups")  # the minutes were published first


def test_a_stage_restored_from_table_bytes_continues_exactly() -> None:
    batches = [_levels(AHEAD, [0, 10]), _levels(AHEAD, [70]), _levels(AHEAD, [130, 150])]

    def run(restart_after: int | None) -> tuple[list, dict]:
        emitter = RecordingEmitter(PARTITIONS)
        with StageDriver(modules=(rollups_module,)) as driver:
            driver.clock.wall = T0 / 1000
            processor = _rollups(emitter, MemoryStates(dump_room, load_room, peek=load_room_due,
                                                       keep_decoded=0))  # fmt: skip
            driver.handle = processor.rooms_batch
            for i, batch in enumerate(batches):
                driver.feed(batch)
                driver.run(processor.advance_quiet_rooms())
                if i == restart_after:
                    processor = _rollups(emitter, processor.rooms.crash(load_room))
                    driver.handle = processor.rooms_batch
        return [r for r in emitter.acked if r[0] != "changelog"], dict(processor.rooms.stored)

    assert run(0) == run(None) == run(1)


@pytest.mark.parametrize("seeded", [True, False])
def test_a_restored_partition_that_reads_nothing_still_closes_its_minutes(seeded: bool) -> None:
    """Its clock is seeded from its rooms' own times, then idles forward with the wall
    (unseeded, the gap the draft found: its rooms' minutes wait for a record)."""
    emitter = RecordingEmitter(PARTITIONS)
    with StageDriver(modules=(rollups_module,)) as driver:
        driver.clock.wall = T0 / 1000
        processor = _rollups(emitter)
        driver.handle = processor.rooms_batch
        driver.feed(_levels(AHEAD, [0, 10, 20]))
        assert emitter.to("rollups") == []
        processor = _rollups(emitter, processor.rooms.crash(load_room))  # no record follows
        if not seeded:
            stage = processor.room_stage
            stage.floor = replace(stage.floor, restored_time=None)
        assert processor.room_stage.clocks == {}
        for _ in range(4):
            driver.clock.advance(60.0)
            driver.run(processor.advance_quiet_rooms())
    minutes = [msgspec.json.decode(v) for _, _, _, v in emitter.to("rollups")]
    if seeded:
        assert (AHEAD, T0, 0) in {(m["scopeId"], m["minute"], m["revision"]) for m in minutes}
        assert list(processor.room_stage.clocks) == [PARTITION_OF(AHEAD)]
    else:
        assert minutes == []
