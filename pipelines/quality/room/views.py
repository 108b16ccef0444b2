"""The room hop of attribution as a room stage's per-key logic: uplink changes in, view updates out.

The levels agent (keyed by participant) derives each SFU publisher's uplink changes
(:class:`~pipelines.quality.attribution.UplinkChange`) and routes them by room; a room stage
keeps one :class:`~pipelines.quality.attribution.RoomViews` per room (who is there, which
tracks each publishes and their conditions) and hands back the
:class:`~pipelines.quality.attribution.ViewUpdate` records each *subscriber's* view must
receive, which go back to the levels agent keyed by subscriber (docs/architecture.md,
Whose network). The same :meth:`RoomViews.apply` builds the offline scorer's views, so both
floors attribute alike.

Nothing here is due on a clock: a room's views change only with its records (a publisher
that stops reporting leaves when the levels agent's sweep expires it), so
:meth:`RoomViewsLogic.advance` emits nothing and :meth:`~RoomViewsLogic.due_at` is None.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from pipelines.quality.attribution import RoomViews, UplinkChange, UpstreamView, ViewUpdate
from pipelines.quality.room.codec import TableCodec

_rooms = TableCodec(RoomViews)
_views = TableCodec(UpstreamView)
_change_json = msgspec.json.Decoder(UplinkChange)
_update_json = msgspec.json.Decoder(ViewUpdate)
_json = msgspec.json.Encoder()


def encode_record(record: UplinkChange | ViewUpdate) -> bytes:
    """The JSON of a record on the internal topics (a JSON array: the structs are
    array-like, so a record costs ~60-120 bytes; they always travel bundled)."""
    return _json.encode(record)


def decode_change(data: bytes) -> UplinkChange:
    return _change_json.decode(data)


def decode_update(data: bytes) -> ViewUpdate:
    return _update_json.decode(data)


def dump_room_views(views: RoomViews) -> bytes:
    """A room's views as its table value (the room stage's table keeps the state's bytes)."""
    return _rooms.dump(views)


def load_room_views(data: bytes) -> RoomViews:
    return _rooms.load(data)


def dump_view(view: UpstreamView) -> bytes:
    """A subscriber's view as its table value (the levels worker's view table)."""
    return _views.dump(view)


def load_view(data: bytes) -> UpstreamView:
    return _views.load(data)


class RoomViewsLogic:
    """One room's :class:`RoomViews` behind the room stage's calls (a ``KeyLogic``)."""

    __slots__ = ("state",)

    def __init__(self, state: RoomViews) -> None:
        self.state = state

    def apply(self, records: Sequence[UplinkChange], stream_time: int) -> list[ViewUpdate]:
        out: list[ViewUpdate] = []
        for change in records:
            out += self.state.apply(change)
        return out

    def advance(self, stream_time: int) -> Sequence[ViewUpdate]:
        return ()

    def due_at(self) -> int | None:
        return None

    def at_stop(self, stream_time: int) -> Sequence[ViewUpdate]:
        return ()

    def is_idle(self) -> bool:
        """Everyone left: nothing to tell a newcomer."""
        return not self.state.rooms

    def snapshot(self) -> bytes:
        return _rooms.dump(self.state)


class RoomViewsKind:
    """Makes a room's :class:`RoomViewsLogic` (a ``LogicKind``)."""

    def key_of(self, record: UplinkChange) -> str:
        return record.room_sid

    def start(self, record: UplinkChange, stream_time: int) -> RoomViewsLogic:
        return RoomViewsLogic(RoomViews())

    def restore(self, data: bytes) -> RoomViewsLogic:
        return RoomViewsLogic(_rooms.load(data))


ROOM_VIEWS = RoomViewsKind()
