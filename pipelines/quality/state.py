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
    rising: int = 0
    """1 once the level has stepped up since its last drop: the first step after trouble waits
    ``Thresholds.upgrade_first_dwell_s``, the next ones ``upgrade_dwell_s``. (This slot held
    the pending upgrade's target before recovery was paced; old values only shorten one
    dwell.)"""
    reference: float = 0.0
    """Remembered demand (bits/s) while bandwidth-limited, or the recv reference rate."""
    rate: float = -1.0
    """Smoothed measured rate (bits/s), -1 before the first window."""
    # Fields below came with the evidence rules (docs/levels.md); last, so that states written
    # before them still decode (with these defaults).
    loss_pool: int = 0
    """The packets behind the loss estimate and the lost ones among them: each window's
    counts added, older ones decaying with ``Thresholds.loss_half_life_s``, so loss is judged
    over enough packets, not one window. One whole number, packets in tenths in its low 32
    bits and lost packets in thousandths above (``participant.pool_of``): one field to read
    and write on the hot path, and a few bytes where two floats take 18."""
    quiet_since: int = -1
    """Sample time (ms) since when the component's unmuted tracks moved no packets, -1 while
    they move: quiet windows prove nothing about loss or bitrate, and a long quiet is a stall."""
    held: int = -1
    """While stalled (quiet for longer than ``Thresholds.stall_after_s``) the level reads 0 and
    the smoothed level waits here, to come back when packets flow again; -1 otherwise."""
    ramp_ms: int = -1
    """Send components: how long (ms) the call-start ramp-up of the bandwidth estimate has
    lasted, -1 once it is over (or for a receiving component)."""
    ramp_peak: int = 0
    """Highest available outgoing bitrate (bits/s) seen during the ramp-up."""
    ramp_flat_ms: int = 0
    """How long (ms) the estimate has not risen by ``Thresholds.ramp_rise`` during the ramp-up."""


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
    idle: tuple[str, ...] = ()
    """Tracks (either direction) that moved no packets in the last window. Last field, for
    the same reason."""
    paused: tuple[str, ...] = ()
    """Tracks that moved no packets in the last two windows: a pause. The first window in
    which such a track moves again is a restart and adds no loss. Last field, likewise."""
    quiet: bool = False
    """Some component is quiet (or has only muted tracks): its flow must be looked at. False
    for the usual participant, whose components are then not read for it. Last field."""
    cause: tuple[str, str] | None = None
    """(publisher, track) whose upstream trouble the last scored sample attributed (the
    event's ``cause``), None when nothing was: an event is due when it changes. Last field."""
    uplink: dict[str, tuple[str, float, float]] = msgspec.field(default_factory=dict)
    """Publishers, when the engine derives uplink conditions: each outbound track's (kind,
    loss, limited) as last announced (``attribution.UplinkCondition``). Last field."""


_state_encoder = msgspec.msgpack.Encoder()
_state_decoder = msgspec.msgpack.Decoder(ParticipantState)


def dump_state(state: ParticipantState) -> bytes:
    """Compact bytes for a changelog-backed table."""
    return _state_encoder.encode(state)


def load_state(data: bytes) -> ParticipantState:
    """Inverse of :func:`dump_state`."""
    return _state_decoder.decode(data)
