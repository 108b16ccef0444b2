"""Whether a room's rollup state can close a minute at a sweep, read without decoding it.

The rollups timer advances every room to the stream's watermark every few seconds, but a
room can emit, or forget a closed minute (until nothing is left and its entry is deleted),
only when the watermark enters a new minute and it has steps or closed minutes. A worker keeps
most room states as the msgpack bytes of its table, so :func:`load_room_due` reads just the
watermark and whether there are any (the steps and closed minutes are skipped as raw slices).

A room judged not due here would close nothing if advanced: the sweep leaves it as bytes, and
what advancing it would still have changed in memory (its watermark) is applied when it is
next decoded (:meth:`RoomRollups.advance` to the sweeps' watermark).
"""

from __future__ import annotations

import msgspec
from msgspec import Raw

from pipelines.quality.rollups.room import (
    DEFAULT_ALLOWED_LATENESS_MS,
    DEFAULT_KEEP_CLOSED_MINUTES,
    RoomRollups,
    next_close_watermark,
)
from pipelines.quality.room.codec import EMPTY_MAP, NIL, check_view


class RoomRollupsDue(msgspec.Struct, array_like=True, gc=False):
    """A :class:`RoomRollups` seen through its encoding: what tells whether a sweep has work."""

    room_sid: Raw
    region: Raw
    allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS
    keep_closed_minutes: int = DEFAULT_KEEP_CLOSED_MINUTES
    watermark_ms: int | None = None
    max_event_ms: Raw = Raw(NIL)
    timelines: Raw = Raw(EMPTY_MAP)
    closed: Raw = Raw(EMPTY_MAP)
    dropped_late: Raw = Raw(b"\x00")
    duplicates: Raw = Raw(b"\x00")

    def due(self, watermark_ms: int) -> bool:
        """Whether :meth:`RoomRollups.advance` to ``watermark_ms`` can emit a minute or prune
        one (a room whose participants all left holds only closed minutes until they are past
        correction: then it is idle, and deleted)."""
        return (bytes(self.timelines) != EMPTY_MAP or bytes(self.closed) != EMPTY_MAP) and (
            self.watermark_ms is None or watermark_ms >= next_close_watermark(self.watermark_ms)
        )


check_view(RoomRollupsDue, RoomRollups, __name__)

_decoder = msgspec.msgpack.Decoder(RoomRollupsDue)


def load_room_due(data: bytes) -> RoomRollupsDue:
    """The sweep's view of a state encoded by :func:`~pipelines.quality.rollups.codec.dump_room`."""
    return _decoder.decode(data)
