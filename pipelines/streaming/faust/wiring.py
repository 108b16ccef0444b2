"""The stages declared on a Faust app: topics, tables, agents, timers and rebalance hooks.

The processors (:mod:`pipelines.streaming.levels`, ``rollups``, ``alerts``) know nothing of
Faust; here each gets its changelog-backed states, the app's producer as its emitter, and its
batches from an :class:`~pipelines.streaming.faust.intake.OrderedIntake`.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import faust

from pipelines.config import Settings
from pipelines.observability import METRICS
from pipelines.quality import Engine, Thresholds
from pipelines.quality.alerting import (
    dump_region_alerts,
    dump_room_alerts,
    load_region_alerts,
    load_room_alerts,
)
from pipelines.quality.alerting.due import load_room_due as load_room_alerts_due
from pipelines.quality.liveness import load_liveness
from pipelines.quality.packing import dump_state_exact
from pipelines.quality.rollups import dump_region, dump_room, load_region, load_room
from pipelines.quality.rollups.due import load_room_due as load_room_rollups_due
from pipelines.quality.room.views import dump_room_views, dump_view, load_room_views, load_view
from pipelines.streaming import alerts as alerts_stage
from pipelines.streaming import levels as levels_stage
from pipelines.streaming import rollups as rollups_stage
from pipelines.streaming import upstream
from pipelines.streaming.alerts import AlertsProcessor, alert_rules
from pipelines.streaming.clock import event_time_bounds
from pipelines.streaming.faust.declare import batch_agent, before_stop, raw_topic, table_states
from pipelines.streaming.faust.intake import OrderedIntake, run_batches
from pipelines.streaming.faust.produce import BatchProducer, app_producer
from pipelines.streaming.faust.states import ChangelogStates
from pipelines.streaming.levels import (
    BATCH_SIZE,
    BATCH_WITHIN_S,
    DECODED_STATES_KEPT,
    FLUSH_CHECK_S,
    FLUSH_INTERVAL_S,
    REPORT_INTERVAL_S,
    ROOM_STATES_KEPT,
    SWEEP_INTERVAL_S,
    LevelsProcessor,
    PartitionOf,
)
from pipelines.streaming.rollups import RollupsProcessor
from pipelines.streaming.upstream import RoomViewsStage, ViewsJoin


def attach_levels(app: faust.App, settings: Settings, thresholds: Thresholds) -> LevelsProcessor:
    """Declare the topics, the table, the agent and the sweep timer on ``app``."""

    def topic(name: str) -> faust.TopicT:
        return raw_topic(app, settings, name)

    stats_topic = topic(settings.topic_stats)
    deadletter_topic = topic(settings.topic_deadletter)
    table = app.Table(
        "participants",
        partitions=settings.partitions,
        # bytes -> Faust's "raw" serializer for the changelog: state is already msgpack.
        key_type=bytes,
        value_type=bytes,
        # Changelog partition from the key with the default partitioner: the same partition
        # as the participant's samples (levels.py, step 2), also for writes made by the sweep
        # timer.
        use_partitioner=True,
    )
    partition_of = PartitionOf(settings.partitions)
    states = ChangelogStates(
        table,
        partition_of=partition_of.of_key,
        source_topic=settings.topic_stats,
        dump=dump_state_exact,
        keep_decoded=DECODED_STATES_KEPT,
        peek=load_liveness,
        changelog_topic=table.changelog_topic.get_topic_name(),
    )
    # Uplink changes derived for SFU publishers only (samples that say so); the room hop and
    # the views join are declared by attach_attribution.
    engine = Engine(
        thresholds, states, participant_ttl_s=settings.participant_ttl_s, uplinks=True
    )
    processor = LevelsProcessor(
        settings,
        engine,
        states,
        stats_topic.get_topic_name(),
        topic(settings.topic_levels).get_topic_name(),
        topic(settings.topic_levels_current).get_topic_name(),
        deadletter_topic.get_topic_name(),
        BatchProducer(app_producer(app), (stats_topic, deadletter_topic)),
        partition_of,
    )

    @app.agent(stats_topic, name="levels")
    async def levels(stream: faust.StreamT) -> None:
        await run_batches(
            OrderedIntake(app, "levels"), stream, processor.process,
            size=BATCH_SIZE, within=BATCH_WITHIN_S, held=processor.held,
        )  # fmt: skip

    processor.rebalancing = lambda: bool(app.rebalancing)

    @app.timer(interval=FLUSH_CHECK_S)
    async def flush_held() -> None:
        # Batches held while the stream went quiet, or through a rebalance.
        held = processor.held
        if held and (held.age(time.monotonic()) >= FLUSH_INTERVAL_S or app.rebalancing):
            await processor.flush()

    @app.timer(interval=SWEEP_INTERVAL_S)
    async def sweep() -> None:
        recovered = app.tables.recovery.completed.is_set()
        await processor.sweep(ready=recovered and not app.rebalancing)
        stored, decoded = states.sizes()
        METRICS.worker_keys.labels(structure="stored").set(stored)
        METRICS.worker_keys.labels(structure="decoded").set(decoded)

    @app.timer(interval=REPORT_INTERVAL_S)
    async def report() -> None:
        # The level distribution, recounted here (every 30 s), not on the hot path.
        by_level = Counter(seen.level for _, seen in states.scan())  # decodes no state
        for level in range(6):
            METRICS.participants.labels(level=str(level)).set(by_level.get(level, 0))
        c = processor.counts
        levels_stage.log.info(
            "levels agent: %d samples, %d level events, %d re-keyed, dead letters %s",
            c.samples,
            c.events,
            c.rerouted,
            dict(c.dead_letters) or "none",
        )

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        # Before another worker recovers these partitions from the changelog.
        await processor.flush()
        states.forget_cache()

    del levels, flush_held, sweep, report, on_revoked
    return processor


@dataclass
class _RoomStage:
    """What a room stage (rollups, alerts) declares alike: its by-room input (the levels
    agent routes its level events there), its by-region topic and its two tables."""

    by_room: faust.TopicT
    by_region: faust.TopicT
    rooms: ChangelogStates[Any]
    regions: ChangelogStates[Any]

    @classmethod
    def declare(
        cls, app: faust.App, settings: Settings, levels: LevelsProcessor, stage: str,
        by_room: str, by_region: str, room_codec: tuple[Any, Any], region_codec: tuple[Any, Any],
        peek: Any,
    ) -> _RoomStage:  # fmt: skip
        """Topics ``by_room`` and ``by_region``, tables ``room-<stage>`` (room states kept
        decoded: :data:`ROOM_STATES_KEPT`, the others read through ``peek``) and
        ``region-<stage>``, all partitioned like the levels agent's room partitions."""
        by_room_topic = raw_topic(app, settings, by_room, internal=True)
        by_region_topic = raw_topic(app, settings, by_region, internal=True)
        levels.room_topics.append(by_room_topic.get_topic_name())
        partition_of = levels.room_partition_of
        rooms = table_states(
            app, settings, f"room-{stage}", by_room_topic, *room_codec, partition_of,
            keep_decoded=ROOM_STATES_KEPT, peek=peek,
        )  # fmt: skip
        regions = table_states(
            app, settings, f"region-{stage}", by_region_topic, *region_codec, partition_of
        )
        return cls(by_room_topic, by_region_topic, rooms, regions)

    def attach(
        self, app: faust.App, stage: str, processor: Any, advance: Any, interval: float
    ) -> None:
        r"""The two batch agents, the timer that ``advance``\ s quiet rooms once the tables
        are recovered, and a cache reset on every rebalance."""
        batch_agent(app, self.by_room, f"{stage}-rooms", processor.rooms_batch)
        batch_agent(app, self.by_region, f"{stage}-regions", processor.regions_batch)

        @app.timer(interval=interval, name=f"{stage}-advance")
        async def tick() -> None:
            if app.tables.recovery.completed.is_set() and not app.rebalancing:
                await advance()

        @app.on_partitions_revoked.connect
        async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
            processor.forget_cache()

        del tick, on_revoked


def attach_attribution(
    app: faust.App, settings: Settings, levels: LevelsProcessor
) -> tuple[RoomViewsStage, ViewsJoin]:
    """Declare attribution's two hops on ``app`` (pipelines/streaming/upstream.py): the room
    stage over ``{app_id}-uplinks-by-room`` (table ``room-upstream``, by room partition) and
    the views join over ``{app_id}-upstream`` (table ``upstream-views``, by the participant's
    partition, co-partitioned with the stats topic and the ``participants`` table); the
    levels agent routes its uplink changes to the first and reads the second."""
    by_room = raw_topic(app, settings, upstream.uplinks_by_room_topic(settings), internal=True)
    views_topic = raw_topic(app, settings, upstream.upstream_topic(settings), internal=True)
    producer = BatchProducer(app_producer(app))
    rooms = table_states(
        app, settings, "room-upstream", by_room, dump_room_views, load_room_views,
        levels.room_partition_of, keep_decoded=ROOM_STATES_KEPT,
    )  # fmt: skip
    stage = RoomViewsStage(
        rooms, views_topic.get_topic_name(), producer, levels.partition_of,
        event_time_bounds(settings),
    )  # fmt: skip
    views = table_states(
        app, settings, "upstream-views", views_topic, dump_view, load_view, levels.partition_of,
        keep_decoded=DECODED_STATES_KEPT,
    )  # fmt: skip
    join = ViewsJoin(views, producer)
    levels.uplinks_topic = by_room.get_topic_name()
    levels.views = join.get
    batch_agent(app, by_room, "upstream-rooms", stage.rooms_batch)
    batch_agent(app, views_topic, "upstream-views", join.upstream_batch)

    @app.on_partitions_revoked.connect
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        stage.forget_cache()
        join.forget_cache()

    del on_revoked
    return stage, join


def attach_rollups(app: faust.App, settings: Settings, levels: LevelsProcessor) -> RollupsProcessor:
    """Declare the rollup topics, tables, agents and timer on ``app``; ``levels`` routes its
    level events to the room stage."""
    stage = _RoomStage.declare(
        app, settings, levels, "rollups", rollups_stage.levels_by_room_topic(settings),
        f"{settings.app_id}-rollups-by-region", (dump_room, load_room),
        (dump_region, load_region), load_room_rollups_due,
    )  # fmt: skip
    processor = RollupsProcessor(
        stage.rooms,
        stage.regions,
        stage.by_region.get_topic_name(),
        raw_topic(app, settings, settings.topic_rollups).get_topic_name(),
        BatchProducer(app_producer(app)),
        settings.partitions,
        levels.room_partition_of,
        event_time_bounds(settings),
    )
    stage.attach(
        app, "rollups", processor, processor.advance_quiet_rooms, rollups_stage.ADVANCE_INTERVAL_S
    )
    region_topic = stage.by_region.get_topic_name()

    def owns_region(region: str) -> bool:
        partition = levels.room_partition_of(region)
        return any(tp.topic == region_topic and tp.partition == partition
                   for tp in app.consumer.assignment())  # fmt: skip

    async def flush_open_minutes() -> None:
        if app.tables.recovery.completed.is_set():
            await processor.flush_open_minutes(owns_region)

    before_stop(app).append(flush_open_minutes)
    return processor


def attach_alerts(app: faust.App, settings: Settings, levels: LevelsProcessor) -> AlertsProcessor:
    """Declare the alerting topics, tables, agents and timer on ``app``; ``levels`` routes its
    level events to the room stage."""
    stage = _RoomStage.declare(
        app, settings, levels, "alerts", alerts_stage.levels_by_room_topic(settings),
        f"{settings.app_id}-alerts-rooms-by-region", (dump_room_alerts, load_room_alerts),
        (dump_region_alerts, load_region_alerts), load_room_alerts_due,
    )  # fmt: skip
    processor = AlertsProcessor(
        alert_rules(settings), stage.rooms, stage.regions, stage.by_region.get_topic_name(),
        raw_topic(app, settings, settings.topic_alerts).get_topic_name(),
        BatchProducer(app_producer(app)), settings.partitions, levels.room_partition_of,
        event_time_bounds(settings),
    )  # fmt: skip
    stage.attach(app, "alerts", processor, processor.advance, alerts_stage.ADVANCE_INTERVAL_S)
    return processor
