"""The part of a level event that the room stages (rollups, alerting) read.

The levels agent hands every level event to the rollups' and alerting's by-room topics. The
full ``netquality.level.v1`` event is ~700 bytes of JSON, most of it the per-metric stats that
neither stage reads; :class:`RoomLevel` is the ~200 bytes they do. Smaller records mean
smaller in-flight fetch buffers and Faust queues in the worker during a join storm (every
participant emits at once), and fewer transient objects per decoded record (each decoded
object left between long-lived states pins allocator pools: docs/performance.md, memory).

Decoding ignores unknown fields, so a full level event (what the levels agent wrote before,
and what tests produce) decodes to the same :class:`RoomLevel`.
"""

from __future__ import annotations

import sys

import msgspec

from pipelines.contracts.level import Cause, EventId, LevelEvent
from pipelines.contracts.types import Level, Region, Sid, TimestampMs


class RoomLevel(msgspec.Struct, rename="camel", omit_defaults=True, frozen=True, gc=False):
    """A participant's level at ``timestamp`` in its room: the fields of a
    ``netquality.level.v1`` event the room stages use, under the same names."""

    event_id: EventId
    room_sid: Sid
    participant_sid: Sid
    region: Region
    timestamp: TimestampMs
    level: Level
    limited_by: str | None = None
    departed: bool = False
    stream_time: TimestampMs | None = None
    """When the stream received the sample behind this event (its produce time, ms), as the
    levels agent read it; ``timestamp`` is the client's clock. The room stages judge the one
    against the other (``pipelines.quality.event_time``); ``None`` in records written before
    it was stamped (and in tests that write level events themselves)."""
    cause: Cause | None = None
    """Whose uplink the room attributed this participant's received trouble to (the level
    event's ``cause``): alerting blames that publisher, not the room."""

    @classmethod
    def of(cls, event: LevelEvent, stream_time: int | None = None) -> RoomLevel:
        """The room stages' view of a level event."""
        return cls(
            event.event_id, event.room_sid, event.participant_sid, event.region,
            event.timestamp, event.level, event.limited_by, event.departed, stream_time,
            event.cause,
        )  # fmt: skip


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(RoomLevel)
_intern = sys.intern


def encode_room_level(event: LevelEvent, stream_time: int | None = None) -> bytes:
    """JSON of the event's :class:`RoomLevel` for a by-room topic."""
    return _encoder.encode(RoomLevel.of(event, stream_time))


def decode_room_level(data: bytes) -> RoomLevel:
    """A by-room record (a :class:`RoomLevel` or a whole level event) as a :class:`RoomLevel`.

    The ids that room states keep (participant, room, region, limiting metric) are interned:
    each room stage keeps them for as long as the participant is present, and without this
    every stage (and every decoded copy) would hold its own string. Raises
    ``msgspec.DecodeError`` (``ValidationError`` included) for a record that is not one.
    """
    r = _decoder.decode(data)
    limited_by = r.limited_by
    return RoomLevel(
        r.event_id, _intern(r.room_sid), _intern(r.participant_sid), _intern(r.region),
        r.timestamp, r.level, None if limited_by is None else _intern(limited_by), r.departed,
        r.stream_time, r.cause,
    )  # fmt: skip


def check_room(room_sid: str, event: LevelEvent | RoomLevel) -> None:
    """Refuse an event of another room: a keying mistake upstream, never a record to fold."""
    if event.room_sid != room_sid:
        raise ValueError(f"event of room {event.room_sid!r} applied to {room_sid!r}")
