"""Whose network, streaming: publishers' uplinks reach their subscribers' scoring in two hops.

1. The levels agent (keyed by participant, ``Engine(uplinks=True)``) routes each step's
   :class:`~pipelines.quality.attribution.UplinkChange` records (only SFU publishers make
   any), bundled by room partition, to ``{app_id}-uplinks-by-room``
   (:func:`uplink_records`).
2. A room stage folds them per room (:mod:`pipelines.quality.room.views`, a ``LogicKind``
   over :class:`~pipelines.quality.attribution.RoomViews`) and publishes the
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
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from pipelines.config import Settings
from pipelines.quality.attribution import UplinkChange, UpstreamView, ViewUpdate, updated_view
from pipelines.quality.room.logic import KeyLogic, LogicKind
from pipelines.quality.room.views import decode_change, decode_update, encode_record
from pipelines.streaming.bundles import bundled, records_of
from pipelines.streaming.stage import Emitter, InputBatch, KeyedStates, Record

log = logging.getLogger(__name__)


def uplinks_by_room_topic(settings: Settings) -> str:
    """The room hop's input: uplink changes, bundled, by room partition."""
    return f"{settings.app_id}-uplinks-by-room"


def upstream_topic(settings: Settings) -> str:
    """The views' topic: view updates, bundled, by the subscriber's partition (co-partitioned
    with the stats topic)."""
    return f"{settings.app_id}-upstream"


def uplink_records(
    topic: str, changes: Iterable[UplinkChange], room_partition_of: Any
) -> list[Record]:
    """The records that carry ``changes`` to the room hop, in order per room partition."""
    return bundled(
        topic, ((room_partition_of(c.room_sid), encode_record(c)) for c in changes)
    )


class RoomViewsStage:
    """The room hop: a batch of uplink changes, folded per room by ``kind``'s logic (a
    ``LogicKind`` of ``pipelines.quality.room.logic``), out as view updates by subscriber.

    Per batch: each room's logic from its state (or new), its changes applied in order, the
    view updates sent and acknowledged, the states flushed to their changelog; the intake
    acknowledges the batch only after that (the handler returned)."""

    def __init__(
        self,
        kind: LogicKind[UplinkChange, ViewUpdate],
        rooms: KeyedStates[KeyLogic[UplinkChange, ViewUpdate]],
        upstream_topic: str,
        producer: Emitter,
        partition_of: Any,
    ) -> None:
        self.kind = kind
        self.rooms = rooms
        self.upstream_topic = upstream_topic
        self.producer = producer
        self.partition_of = partition_of
        """The participant partitioner (the stats topic's): where a subscriber's view goes."""
        self.changes = 0
        self.updates = 0

    async def rooms_batch(self, batch: InputBatch) -> None:
        by_room: dict[str, list[UplinkChange]] = {}
        key_of = self.kind.key_of
        for raw in records_of(batch.records, "upstream-rooms"):
            try:
                change = decode_change(raw)
            except msgspec.DecodeError as exc:  # only our own agent writes here: never crash
                log.warning("upstream rooms: skipping an undecodable change: %s", exc)
                continue
            by_room.setdefault(key_of(change), []).append(change)
        updates = self.apply(by_room)
        if updates:
            partition_of = self.partition_of
            pending = await self.producer.send(
                bundled(
                    self.upstream_topic,
                    ((partition_of(u.subscriber_sid), encode_record(u)) for u in updates),
                )
            )
            await asyncio.gather(*pending)
        if by_room:
            await self.rooms.flush_batched(self.producer)

    def apply(self, by_room: dict[str, list[UplinkChange]]) -> list[ViewUpdate]:
        """Each room's changes through its logic; the updates in order per room."""
        rooms = self.rooms
        out: list[ViewUpdate] = []
        for room, changes in by_room.items():
            self.changes += len(changes)
            logic = rooms.get(room)
            if logic is None:
                logic = self.kind.start(changes[0], 0)
            out += logic.apply(changes, 0)
            if logic.is_idle():
                rooms.pop(room, None)
            else:
                rooms[room] = logic
        self.updates += len(out)
        return out

    def forget_cache(self) -> None:
        self.rooms.forget_cache()


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
