"""Per-participant engine state, small and serialisable.

msgspec Structs with ``array_like=True`` encode as compact arrays (no field names), which is
what goes to the Faust changelog for every participant update: a typical participant is a
few hundred bytes. Counters are kept per track as ``(bytes, packets, lost)`` tuples.
"""

from __future__ import annotations

import msgspec

TrackCounters = tuple[int, int, int]
"""(bytes, packets, packetsLost) as last seen; ``lost`` is -1 when the track does not report it."""

NO_LEVEL = -1


class ComponentState(msgspec.Struct, array_like=True, gc=False):
    """Smoothed level of one component (say video send) and what it remembers."""

    level: int = NO_LEVEL
    limited_by: str = ""
    up_since: int = -1
    """Sample time (ms) a pending upgrade started, -1 when none is pending."""
    up_target: int = 0
    """Lowest level the pending upgrade has qualified for so far."""
    reference: float = 0.0
    """Remembered demand (bits/s) while bandwidth-limited, or the recv reference rate."""
    rate: float = -1.0
    """Smoothed measured rate (bits/s), -1 before the first window."""


class ParticipantState(msgspec.Struct, array_like=True):
    """Everything the engine keeps about one participant between samples."""

    room_sid: str
    participant_sid: str
    region: str
    seq: int = -1
    timestamp: int = 0
    """Client time (ms) of the last accepted sample."""
    seen_at: int = 0
    """Our clock (ms) when the last sample was accepted: staleness never trusts client clocks."""
    level: int = NO_LEVEL
    """Last overall level reported in an event."""
    limited_by: str | None = None
    stale: bool = False
    outbound: dict[str, TrackCounters] = msgspec.field(default_factory=dict)
    inbound: dict[str, TrackCounters] = msgspec.field(default_factory=dict)
    audio_send: ComponentState | None = None
    audio_recv: ComponentState | None = None
    video_send: ComponentState | None = None
    video_recv: ComponentState | None = None
    interval: int = 0
    """Learned sampling interval (ms, EWMA of accepted windows); 0 until known. Last field so
    states written before it existed still decode."""


_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(ParticipantState)


def dump_state(state: ParticipantState) -> bytes:
    """Compact bytes for a changelog-backed table."""
    return _state_encoder.encode(state)


def load_state(data: bytes) -> ParticipantState:
    """Inverse of :func:`dump_state`."""
    return _state_decoder.decode(data)
