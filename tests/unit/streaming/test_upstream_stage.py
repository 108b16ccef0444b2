"""Whose network, streaming (issue 27): the room hop's logic and both hops through the stage
harness (levels agent -> room stage -> views join -> levels agent), no Faust and no broker.
The real worker on the real broker is tests/integration/test_attribution_pipeline.py."""

from __future__ import annotations

import io

from test_stage_harness import stats_records

from pipelines.config import Settings
from pipelines.contracts import decode_level
from pipelines.quality import Engine, load_state
from pipelines.quality.attribution import RoomViews, ViewStore
from pipelines.quality.liveness import load_liveness
from pipelines.quality.packing import dump_state_exact
from pipelines.quality.room.views import (
    ROOM_VIEWS,
    decode_update,
    dump_room_views,
    dump_view,
    load_room_views,
    load_view,
)
from pipelines.scorer import score
from pipelines.streaming import levels as levels_module
from pipelines.streaming.bundles import unbundle
from pipelines.streaming.clock import event_time_bounds
from pipelines.streaming.levels import LevelsProcessor, PartitionOf
from pipelines.streaming.upstream import RoomViewsStage, ViewsJoin
from pipelines.testing.room import four_members, room_samples
from pipelines.testing.stages import (
    InRecord,
    MemoryStates,
    RecordBatch,
    RecordingEmitter,
    StageDriver,
)

SETTINGS = Settings.from_env({})
PARTITIONS = SETTINGS.partitions
partition_of = PartitionOf(PARTITIONS)


def bad_publisher_room(seconds: int = 60):
    members = four_members()
    members[1].uplink.append((20, 45, 0.20))  # PA02's uplink loses 20 % from 20 s to 45 s
    return room_samples(members, seconds)


def changes_of(samples):
    engine = Engine(uplinks=True)
    engine.feed_batch(samples)
    return engine.take_uplink_changes()


# --- the room hop's logic ------------------------------------------------------------------


def test_the_room_logic_is_roomviews_and_resumes_from_its_snapshot():
    changes = changes_of(bad_publisher_room())
    assert changes and {c.room_sid for c in changes} == {"RM-sfu"}
    whole = RoomViews()
    expected = [u for c in changes for u in whole.apply(c)]
    logic = ROOM_VIEWS.start(changes[0], 0)
    half = len(changes) // 2
    got = list(logic.apply(changes[:half], 0))
    logic = ROOM_VIEWS.restore(logic.snapshot())  # a restart between two batches
    got += logic.apply(changes[half:], 0)
    assert got == expected
    assert ROOM_VIEWS.key_of(changes[0]) == "RM-sfu"
    assert logic.due_at() is None and not logic.advance(10**13) and not logic.at_stop(0)


def test_a_room_everyone_left_is_idle():
    members = four_members()
    for m in members:
        m.leave_s = 5
    changes = changes_of(room_samples(members, 6))
    logic = ROOM_VIEWS.start(changes[0], 0)
    logic.apply(changes, 0)
    assert logic.is_idle()


def test_a_view_round_trips_through_its_table_codec():
    store = ViewStore()
    rooms = RoomViews()
    for change in changes_of(bad_publisher_room()):
        store.apply(rooms.apply(change))
    view = store.get("PA01")
    assert view is not None and load_view(dump_view(view)) == view


# --- both hops through the harness ----------------------------------------------------------


def as_input(records, topic: str) -> RecordBatch:
    return RecordBatch([InRecord(value, key, p, topic=topic) for _, p, key, value in records])


class Pipeline:
    """The three stages over in-memory states and one emitter, fed a step at a time; each
    hop's output is handed to the next before the next step (a view that keeps up)."""

    def __init__(self, driver: StageDriver) -> None:
        self.driver = driver
        self.emitter = RecordingEmitter(PARTITIONS)
        self.states = MemoryStates(
            dump_state_exact, load_state, partition_of=partition_of.of_key, peek=load_liveness
        )
        engine = Engine(states=self.states, uplinks=True)
        self.levels = LevelsProcessor(
            SETTINGS, engine, self.states, "stats", "levels", "current", "deadletter",
            self.emitter, partition_of,
        )  # fmt: skip
        self.rooms = MemoryStates(
            dump_room_views, load_room_views, partition_of=partition_of.of_key
        )
        self.views = MemoryStates(dump_view, load_view, partition_of=partition_of.of_key)
        self.stage = RoomViewsStage(
            self.rooms, "upstream", self.emitter, partition_of, event_time_bounds(SETTINGS)
        )
        self.join = ViewsJoin(self.views, self.emitter)
        self.levels.uplinks_topic = "uplinks-by-room"
        self.levels.views = self.join.get
        driver.handle, driver.held = self.levels.process, self.levels.held
        self.seen = {"uplinks-by-room": 0, "upstream": 0}

    def new(self, topic: str):
        records = self.emitter.to(topic)
        fresh = records[self.seen[topic] :]
        self.seen[topic] = len(records)
        return fresh

    def step(self, samples) -> None:
        self.driver.feed(stats_records(samples), advance=1.0)
        uplinks = self.new("uplinks-by-room")
        if uplinks:
            self.driver.run(self.stage.rooms_batch(as_input(uplinks, "uplinks-by-room")))
        updates = self.new("upstream")
        for _, partition, _, value in updates:
            for raw in unbundle(value):  # keyed by subscriber: in its own partition
                assert partition == partition_of(decode_update(raw).subscriber_sid)
        if updates:
            self.driver.run(self.join.upstream_batch(as_input(updates, "upstream")))

    def events(self):
        return [decode_level(r[3]) for r in self.emitter.to("levels")]


def by_second(samples):
    steps: dict[int, list] = {}
    for s in samples:
        steps.setdefault(s.timestamp // 1000, []).append(s)
    return list(steps.values())


def scorer_events(samples):
    out = io.BytesIO()
    score(samples, Engine(), out.write)
    return [decode_level(line) for line in out.getvalue().splitlines()]


def test_the_two_hops_give_the_scorers_events_and_name_the_publisher():
    samples = bad_publisher_room()
    with StageDriver(modules=(levels_module,)) as driver:
        pipeline = Pipeline(driver)
        for step in by_second(samples):
            pipeline.step(step)
        events = pipeline.events()
    by_sid = {e.participant_sid for e in events if e.cause is not None}
    assert by_sid == {"PA01", "PA03", "PA04"}
    assert {e.cause.participant_sid for e in events if e.cause is not None} == {"PA02"}
    key = lambda e: (e.participant_sid, e.timestamp)  # noqa: E731
    assert sorted(events, key=key) == sorted(scorer_events(samples), key=key)
    assert pipeline.stage.changes > 0 and pipeline.join.updates > 0


def test_the_views_survive_a_restart_through_their_changelogs():
    samples = by_second(bad_publisher_room())
    with StageDriver(modules=(levels_module,)) as driver:
        pipeline = Pipeline(driver)
        for step in samples[:25]:
            pipeline.step(step)
        before = pipeline.events()
        # A restart: every stage's state is what its changelog holds.
        driver.run(pipeline.levels.flush())
        rooms, views = pipeline.rooms.crash(), pipeline.views.crash()
        assert views.stored and rooms.stored
        pipeline.rooms, pipeline.views = rooms, views
        pipeline.stage = RoomViewsStage(
            rooms, "upstream", pipeline.emitter, partition_of, event_time_bounds(SETTINGS)
        )
        pipeline.join.views = views
        for step in samples[25:]:
            pipeline.step(step)
        events = pipeline.events()
    assert events[: len(before)] == before
    key = lambda e: (e.participant_sid, e.timestamp)  # noqa: E731
    assert sorted(events, key=key) == sorted(
        scorer_events([s for step in samples for s in step]), key=key
    )


def test_traffic_that_does_not_say_sfu_routes_nothing():
    members = four_members()
    members[1].uplink.append((20, 45, 0.20))
    samples = room_samples(members, 30, topology=None)
    with StageDriver(modules=(levels_module,)) as driver:
        pipeline = Pipeline(driver)
        for step in by_second(samples):
            pipeline.step(step)
        assert pipeline.emitter.to("uplinks-by-room") == []
        assert pipeline.events() == Engine().feed_batch(samples)
