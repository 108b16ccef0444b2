"""Whose network, streaming: publishers' uplinks reach their subscribers' scoring in two hops.

1. The levels agent (keyed by participant, ``Engine(uplinks=True)``) routes each step's
   :class:`~pipelines.quality.attribution.UplinkChange` records (only SFU publishers make
   any), bundled by room partition, to ``{app_id}-uplinks-by-room``
   (``LevelsProcessor._route_uplinks``).
2. The generic room stage (:mod:`pipelines.streaming.room_stage`) folds them per room
   (:mod:`pipelines.quality.room.views`, a ``LogicKind`` over
   :class:`~pipelines.quality.attribution.RoomViews`) and publishes the
   :class:`~pipelines.quality.attribution.ViewUpdate` records, bundled by the partition the
   default partitioner gives the *subscriber*, to ``{app_id}-upstream``
   (:class:`RoomViewsStage`). That topic has the stats topic's partition count, so Faust's
   assignor (co-partitioned: same count, same subscribers) gives a participant's stats
   partition and its view partition to the same worker.
3. There a second agent applies them to a changelog-backed table of views by subscriber
   (:class:`ViewsJoin`), which the levels agent reads, as a table join, when it scores a
   subscriber's SFU sample (``Engine.feed_batch(views=...)``).

Each hop acknowledges its input only after its output is acknowledged and its state is
written to its changelog, so a crash or a rebalance replays input rather than losing it; a
replayed view update repeats an entry the view already holds, which changes no lookup
(docs/architecture.md, Whose network).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from pipelines.config import Settings
from pipelines.quality.attribution import UplinkChange, UpstreamView, ViewUpdate, updated_view
from pipelines.quality.event_time import EventTimeBounds
from pipelines.quality.room.views import (
    ROOM_VIEWS,
    RoomViewsLogic,
    decode_change,
    decode_update,
    encode_record,
)
from pipelines.streaming.bundles import bundled, records_of
from pipelines.streaming.levels import PartitionOf
from pipelines.streaming.room_stage import Floor, RoomStage
from pipelines.streaming.stage import Emitter, InputBatch, KeyedStates

log = logging.getLogger(__name__)


def uplinks_by_room_topic(settings: Settings) -> str:
    """The room hop's input: uplink changes, bundled, by room partition."""
    return f"{settings.app_id}-uplinks-by-room"


def upstream_topic(settings: Settings) -> str:
    """The views' topic: view updates, bundled, by the subscriber's partition (co-partitioned
    with the stats topic)."""
    return f"{settings.app_id}-upstream"


class RoomViewsStage:
    """The room hop: the generic :class:`~pipelines.streaming.room_stage.RoomStage` over
    :mod:`pipelines.quality.room.views`' logic (a room's :class:`RoomViews`), its outputs
    sent by subscriber. Per batch the stage folds each change into its room, this sends the
    view updates and waits for their acks, and the stage then flushes the rooms' states; the
    intake acknowledges the batch only after that. Nothing is due on a clock (no timer)."""

    def __init__(
        self,
        rooms: KeyedStates[Any],
        upstream_topic: str,
        producer: Emitter,
        partition_of: PartitionOf,
        bounds: EventTimeBounds,
    ) -> None:
        self.upstream_topic = upstream_topic
        self.producer = producer
        self.partition_of = partition_of
        """Kafka's default partitioner: of a room (its state) and of a subscriber (its view,
        in the stats topic's partition)."""
        self.updates = 0
        floor: Floor[UplinkChange, ViewUpdate] = Floor(
            "upstream", "uplink change", ROOM_VIEWS, decode_change, RoomViewsLogic,
            self._publish, timed=False,
        )  # fmt: skip
        self.stage = RoomStage(
            floor, rooms, producer, partition_of, bounds, asyncio.Lock(), time.time
        )

    @property
    def changes(self) -> int:
        """Uplink changes read."""
        return self.stage.read

    async def rooms_batch(self, batch: InputBatch) -> None:
        await self.stage.batch(batch)

    async def _publish(self, updates: list[ViewUpdate]) -> None:
        if not updates:
            return
        self.updates += len(updates)
        partition_of = self.partition_of
        pending = await self.producer.send(
            bundled(
                self.upstream_topic,
                ((partition_of(u.subscriber_sid), encode_record(u)) for u in updates),
            )
        )
        await asyncio.gather(*pending)

    def forget_cache(self) -> None:
        self.stage.forget_cache()


class ViewsJoin:
    """The join side on the levels worker: view updates into a table of views by subscriber,
    which the levels agent's engine reads (:meth:`get`) as it scores."""

    def __init__(self, views: KeyedStates[UpstreamView], producer: Emitter) -> None:
        self.views = views
        self.producer = producer
        self.updates = 0

    def get(self, participant_sid: str) -> UpstreamView | None:
        """The subscriber's view (``Engine.feed_batch(views=...)``), None without one."""
        return self.views.get(participant_sid)

    def apply(self, updates: Sequence[ViewUpdate]) -> None:
        views = self.views
        for update in updates:
            sid = update.subscriber_sid
            view = updated_view(views.get(sid), update)
            if view is None:
                views.pop(sid, None)
            else:
                views[sid] = view
        self.updates += len(updates)

    async def upstream_batch(self, batch: InputBatch) -> None:
        """Apply a batch of bundled updates and write the changed views (the intake then
        acknowledges the batch)."""
        updates: list[ViewUpdate] = []
        for raw in records_of(batch.records, "upstream-views"):
            try:
                updates.append(decode_update(raw))
            except msgspec.DecodeError as exc:  # only our own room stage writes here
                log.warning("upstream views: skipping an undecodable update: %s", exc)
        if updates:
            self.apply(updates)
            await self.views.flush_batched(self.producer)

    def forget_cache(self) -> None:
        self.views.forget_cache()
