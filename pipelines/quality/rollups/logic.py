"""The rollup states behind the room stages' protocol (``pipelines.quality.room.logic``).

Thin adapters: each call is what ``pipelines/streaming/rollups.py`` does with the state
today, so a generic stage driving these emits what that stage emits.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.quality.rollups.codec import dump_region, dump_room, load_region, load_room
from pipelines.quality.rollups.minutes import MinuteRollup
from pipelines.quality.rollups.region import RegionRollups
from pipelines.quality.rollups.room import RoomRollups
from pipelines.quality.room.level import RoomLevel


class RoomRollupsLogic:
    """A room's minutes: level events in, closed (or corrected) room minutes out."""

    __slots__ = ("state",)

    def __init__(self, state: RoomRollups) -> None:
        self.state = state

    def apply(self, records: Sequence[RoomLevel], stream_time: int) -> list[MinuteRollup]:
        if len(records) == 1:  # the stage's hot path: one level event, no list of our own
            return self.state.apply(records[0])
        out: list[MinuteRollup] = []
        for record in records:
            out.extend(self.state.apply(record))
        return out

    def advance(self, stream_time: int) -> list[MinuteRollup]:
        """To the watermark ``stream_time`` less the room's allowed lateness."""
        return self.state.advance(stream_time - self.state.allowed_lateness_ms)

    def due_at(self) -> int | None:
        watermark = self.state.due_watermark
        return None if watermark is None else watermark + self.state.allowed_lateness_ms

    def at_stop(self, stream_time: int) -> list[MinuteRollup]:
        return self.state.open_minutes(stream_time)

    def is_idle(self) -> bool:
        return self.state.is_idle

    def snapshot(self) -> bytes:
        return dump_room(self.state)


class RoomRollupsKind:
    """Makes :class:`RoomRollupsLogic` (rooms with the default settings, as the stage does)."""

    def key_of(self, record: RoomLevel) -> str:
        return record.room_sid

    def start(self, record: RoomLevel, stream_time: int) -> RoomRollupsLogic:
        return RoomRollupsLogic(RoomRollups.for_event(record))

    def restore(self, data: bytes) -> RoomRollupsLogic:
        return RoomRollupsLogic(load_room(data))


class RegionRollupsLogic:
    """A region's minutes: room minutes in, region minutes out. Time does not move a region
    (its room minutes do), and a region is never deleted (it prunes minutes as they age)."""

    __slots__ = ("state",)

    def __init__(self, state: RegionRollups) -> None:
        self.state = state

    def apply(self, records: Sequence[MinuteRollup], stream_time: int) -> list[MinuteRollup]:
        out: list[MinuteRollup] = []
        for record in records:
            out.extend(self.state.apply(record))
        return out

    def advance(self, stream_time: int) -> list[MinuteRollup]:
        return []

    def due_at(self) -> int | None:
        return None

    def at_stop(self, stream_time: int) -> list[MinuteRollup]:
        return []

    def is_idle(self) -> bool:
        return False

    def snapshot(self) -> bytes:
        return dump_region(self.state)


class RegionRollupsKind:
    """Makes :class:`RegionRollupsLogic`."""

    def key_of(self, record: MinuteRollup) -> str:
        return record.region

    def start(self, record: MinuteRollup, stream_time: int) -> RegionRollupsLogic:
        return RegionRollupsLogic(RegionRollups(record.region))

    def restore(self, data: bytes) -> RegionRollupsLogic:
        return RegionRollupsLogic(load_region(data))
