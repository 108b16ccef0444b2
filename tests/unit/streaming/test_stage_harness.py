"""The stages driven through the harness (pipelines/testing/stages.py): records in, records
out, no Faust and no broker. The real broker path is tests/integration and tests/faults."""

from __future__ import annotations

from collections import defaultdict

import msgspec
import pytest
from test_room_states_kept import RULES

from pipelines.config import Settings
from pipelines.contracts import decode_level, encode
from pipelines.quality import Engine, load_state
from pipelines.quality.alerting import (
    dump_region_alerts,
    dump_room_alerts,
    load_region_alerts,
    load_room_alerts,
)
from pipelines.quality.liveness import load_liveness
from pipelines.quality.packing import dump_state_exact
from pipelines.quality.rollups import dump_region, dump_room, load_region, load_room
from pipelines.quality.room.level import RoomLevel
from pipelines.streaming import alerts as alerts_module
from pipelines.streaming import levels as levels_module
from pipelines.streaming import rollups as rollups_module
from pipelines.streaming.alerts import AlertsProcessor
from pipelines.streaming.bundles import bundle
from pipelines.streaming.levels import FLUSH_INTERVAL_S, LevelsProcessor, PartitionOf
from pipelines.streaming.rollups import RollupsProcessor
from pipelines.testing import scripted_session
from pipelines.testing.stages import (
    InRecord,
    MemoryStates,
    RecordingEmitter,
    StageDriver,
    records,
)

SETTINGS = Settings.from_env({})
PARTITIONS = SETTINGS.partitions
SAMPLES = scripted_session()
STEPS = [SAMPLES[i : i + 3] for i in range(0, len(SAMPLES), 3)]  # one second of three
partition_of = PartitionOf(PARTITIONS)


def stats_records(samples) -> list[InRecord]:
    """Bare samples as their publisher writes them: keyed and partitioned by participant."""
    return [
        InRecord(
            encode(s), s.participant_sid.encode(), partition_of(s.participant_sid),
            topic="stats", timestamp=s.timestamp / 1000,
        )
        for s in samples
    ]  # fmt: skip


def levels_stage(
    driver: StageDriver, emitter: RecordingEmitter, states: MemoryStates | None = None
) -> tuple[LevelsProcessor, MemoryStates]:
    """The levels processor over in-memory states, made inside the driver (its clock)."""
    if states is None:
        states = MemoryStates(
            dump_state_exact, load_state, partition_of=partition_of.of_key, peek=load_liveness
        )
    engine = Engine(states=states, participant_ttl_s=SETTINGS.participant_ttl_s)
    processor = LevelsProcessor(
        SETTINGS, engine, states, "stats", "levels", "current", "deadletter", emitter,
        partition_of,
    )  # fmt: skip
    driver.handle, driver.held = processor.process, processor.held
    return processor, states


def by_participant(values) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for event in values:
        out[event["participantSid"]].append(event)
    return dict(out)


def test_levels_a_sessions_samples_give_the_offline_engines_events() -> None:
    offline = Engine(participant_ttl_s=SETTINGS.participant_ttl_s)
    expected = []
    for step in STEPS:  # the same produce times the stage reads off its records
        received = [int(s.timestamp / 1000 * 1000) for s in step]
        expected += msgspec.to_builtins(offline.feed_batch(step, received_at=received))
    emitter = RecordingEmitter(PARTITIONS)
    with StageDriver(modules=(levels_module,)) as driver:
        driver.clock.wall = SAMPLES[0].timestamp / 1000
        processor, states = levels_stage(driver, emitter)
        for step in STEPS:
            driver.feed(stats_records(step), advance=1.0)
        driver.run(processor.flush())
    published = [msgspec.to_builtins(decode_level(v)) for _, _, _, v in emitter.to("levels")]
    assert expected and by_participant(published) == by_participant(expected)
    assert len(emitter.to("current")) == len(expected)
    assert emitter.to("deadletter") == [] and processor.counts.rerouted == 0
    assert not list(driver.unreleased())
    assert sorted(states.stored) == sorted({s.participant_sid.encode() for s in SAMPLES})


def test_levels_state_is_flushed_only_after_the_emitter_acked() -> None:
    emitter = RecordingEmitter(PARTITIONS)
    with StageDriver(modules=(levels_module,)) as driver:
        driver.clock.wall = SAMPLES[0].timestamp / 1000
        _, states = levels_stage(driver, emitter)
        first = driver.feed(stats_records(STEPS[0]), advance=0.5)
        # Within the flush interval: the change waits dirty, the batch is held.
        assert states.changed() == 3 and states.stored == {} and not first.released
        emitter.fail_next(RuntimeError("broker down"))
        with pytest.raises(RuntimeError):  # the next step's flush is not acknowledged
            driver.feed(stats_records(STEPS[1]), advance=FLUSH_INTERVAL_S)
        assert states.stored == {} and not any(b.released for b in driver.batches)
        assert states.changed() == 3  # still dirty: the next flush writes them again
        restarted = states.crash()  # a crash now: nothing was durable
        assert restarted.stored == {} and len(restarted) == 0

    # The restart replays both batches (nothing was acknowledged) and gets the same events.
    again = RecordingEmitter(PARTITIONS)
    with StageDriver(modules=(levels_module,)) as driver:
        driver.clock.wall = SAMPLES[0].timestamp / 1000
        _, states = levels_stage(driver, again, restarted)
        driver.feed(stats_records(STEPS[0]), advance=0.5)
        driver.feed(stats_records(STEPS[1]), advance=FLUSH_INTERVAL_S)
        assert all(b.released == 1 for b in driver.batches)
    assert len(states.stored) == 3 and states.changed() == 0
    assert [r for r in again.acked if r[0] == "changelog"] == again.sent[-3:]  # after the acks
    assert {v for t, _, _, v in emitter.acked if t == "levels"} <= {
        v for t, _, _, v in again.acked if t == "levels"
    }


def test_rollups_close_each_rooms_minutes_and_sum_them_by_region() -> None:
    emitter = RecordingEmitter(PARTITIONS)
    modules = (levels_module, rollups_module)
    with StageDriver(modules=modules) as driver:
        driver.clock.wall = SAMPLES[0].timestamp / 1000
        levels, _ = levels_stage(driver, emitter)
        levels.room_topics.append("by-room")
        for step in STEPS:
            driver.feed(stats_records(step), advance=1.0)
        rooms = MemoryStates(dump_room, load_room)
        rollups = RollupsProcessor(
            rooms, MemoryStates(dump_region, load_region), "by-region", "rollups", emitter,
            PARTITIONS,
        )  # fmt: skip
        driver.handle, driver.held = rollups.rooms_batch, None
        driver.feed([InRecord(v, k, p, topic=t) for t, p, k, v in emitter.to("by-room")])
        assert sorted(rooms.stored) == [b"RM1", b"RM2"] and rooms.changed() == 0
        driver.clock.advance(150.0)  # the stream goes quiet: the timer closes the minutes
        driver.run(rollups.advance_quiet_rooms())
        driver.handle = rollups.regions_batch
        for partition in {p for t, p, _, _ in emitter.to("by-region")}:
            values = [v for t, p, _, v in emitter.to("by-region") if p == partition]
            driver.feed(records(values, partition=partition, topic="by-region"))
    minutes = [msgspec.json.decode(v) for _, _, _, v in emitter.to("rollups")]
    rooms_seen = {(m["scopeId"], m["participantsSeen"]) for m in minutes if m["scope"] == "room"}
    assert rooms_seen == {("RM1", 2), ("RM2", 1)}
    regions = [m for m in minutes if m["scope"] == "region"]
    assert regions and max(m["participantsSeen"] for m in regions) == 3
    full = [m for m in minutes if m["scope"] == "room" and m["changes"] == 0]
    assert full and all(sum(m["secondsAtLevel"]) == 60 * m["participantsSeen"] for m in full)


def test_alerts_open_a_sustained_room_alert_and_resolve_it() -> None:
    emitter = RecordingEmitter(PARTITIONS)
    room_partition = partition_of("R1")
    start = 1_800_000_000_000

    def levels_at(second: int, level: int) -> list[InRecord]:
        at = start + second * 1000
        values = [
            msgspec.json.encode(
                RoomLevel(f"{sid}:{at}", "R1", sid, "eu", at, level, stream_time=at)
            )
            for sid in ("P1", "P2")
        ]  # fmt: skip
        return records(bundle(values), partition=room_partition, topic="by-room")

    with StageDriver(modules=(alerts_module,)) as driver:
        driver.clock.wall = start / 1000
        rooms = MemoryStates(dump_room_alerts, load_room_alerts)
        alerts = AlertsProcessor(
            RULES, rooms, MemoryStates(dump_region_alerts, load_region_alerts), "by-region",
            "alerts", emitter, PARTITIONS,
        )  # fmt: skip
        driver.handle = alerts.rooms_batch
        driver.feed(levels_at(0, 1))
        for _ in range(5):  # the room stays degraded past its sustain
            driver.clock.advance(1.0)
            driver.run(alerts.advance())
        driver.feed(levels_at(6, 5), advance=1.0)
        for _ in range(6):  # and good again past its resolve time
            driver.clock.advance(1.0)
            driver.run(alerts.advance())
    room_alerts = [
        msgspec.json.decode(v) for _, _, _, v in emitter.to("alerts")
    ]
    statuses = [a["status"] for a in room_alerts if a["kind"] == "room_degraded"]
    assert statuses[0] == "opened" and statuses[-1] == "resolved"
    assert alerts.counts.opened >= 1 and alerts.counts.resolved >= 1
    assert all(b.released for b in driver.batches) and rooms.changed() == 0
    assert {v for t, _, _, v in emitter.sent if t == "by-region"} == {
        v for t, _, _, v in emitter.acked if t == "by-region"
    }
