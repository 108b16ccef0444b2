"""The rollup states' table encodings (a changelog may hold states of an older release)."""

from __future__ import annotations

import msgspec

from pipelines.quality.rollups.minutes import MinuteRollup
from pipelines.quality.rollups.region import DEFAULT_REGION_KEEP_MINUTES, RegionRollups, RoomPart
from pipelines.quality.rollups.room import RoomRollups
from pipelines.quality.room.codec import TableCodec

_rooms = TableCodec(RoomRollups)
_regions = TableCodec(RegionRollups)
dump_room = _rooms.dump
"""Compact bytes for a changelog-backed table keyed by room."""
load_room = _rooms.load
"""Inverse of :func:`dump_room`."""
dump_region = _regions.dump
"""Compact bytes for a changelog-backed table keyed by region."""


class _RegionRollupsV1(msgspec.Struct, array_like=True):
    """The region state as written before :class:`RoomPart`: whole room rollups."""

    region: str
    keep_minutes: int = DEFAULT_REGION_KEEP_MINUTES
    rooms: dict[int, dict[str, MinuteRollup]] = msgspec.field(default_factory=dict)
    emitted: dict[int, MinuteRollup] = msgspec.field(default_factory=dict)
    max_minute: int | None = None
    dropped_late: int = 0

    def upgraded(self) -> RegionRollups:
        rooms = {
            minute: {sid: RoomPart.of(room) for sid, room in per_room.items()}
            for minute, per_room in self.rooms.items()
        }
        return RegionRollups(
            self.region, self.keep_minutes, rooms, self.emitted, self.max_minute,
            self.dropped_late,
        )  # fmt: skip


_region_v1_decoder = msgspec.msgpack.Decoder(_RegionRollupsV1)


def load_region(data: bytes) -> RegionRollups:
    """Inverse of :func:`dump_region`; a state written before :class:`RoomPart` (its room
    minutes as whole rollups, in a changelog from an older release) is upgraded."""
    try:
        return _regions.load(data)
    except msgspec.ValidationError:
        return _region_v1_decoder.decode(data).upgraded()
