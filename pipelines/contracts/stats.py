"""``netquality.stats.v1``: one stats sample a client publishes, about once per second.

Field names follow W3C webrtc-stats so values copy straight out of ``getStats()``.
Byte and packet counters are cumulative, as in getStats; the engine turns them into rates.
"""

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from pipelines.contracts.types import (
    BitsPerSecond,
    Counter,
    Fraction,
    Kind,
    Region,
    Seconds,
    Sid,
    TimestampMs,
)

STATS_SCHEMA = "netquality.stats.v1"
MAX_TRACKS = 64
"""Tracks per direction; a large SFU subscription is ~50, thousands is abuse."""

ConnectionState = Literal[
    "new", "connecting", "connected", "reconnecting", "disconnected", "failed", "closed"
]

Topology = Literal["sfu", "p2p"]
"""How the participant's media travels: through a media server (``sfu``), or straight to the
other party (``p2p``). Not a getStats field: the app knows it."""


class CandidatePair(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """The selected ICE candidate pair: the transport's own view of capacity and RTT."""

    available_outgoing_bitrate: BitsPerSecond | None = None
    available_incoming_bitrate: BitsPerSecond | None = None
    current_round_trip_time: Seconds | None = None


class RemoteInbound(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """``remote-inbound-rtp``: what the receiver reported back about a track we send."""

    packets_lost: Counter | None = None
    fraction_lost: Fraction | None = None
    jitter: Seconds | None = None
    round_trip_time: Seconds | None = None


class OutboundTrack(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """``outbound-rtp`` of one published track (with its remote-inbound report)."""

    track_sid: Sid
    kind: Kind
    bytes_sent: Counter
    packets_sent: Counter
    target_bitrate: BitsPerSecond | None = None
    frame_width: Annotated[int, Meta(ge=0, le=16384)] | None = None
    frame_height: Annotated[int, Meta(ge=0, le=16384)] | None = None
    frames_per_second: Annotated[float, Meta(ge=0, le=1000)] | None = None
    quality_limitation_reason: Literal["none", "cpu", "bandwidth", "other"] | None = None
    remote: RemoteInbound | None = None
    muted: bool | None = None
    """Not a getStats field: true while the app has muted or disabled this track. A muted
    track that sends nothing is not a stall (level 0); unknown (null) counts as unmuted."""


class InboundTrack(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """``inbound-rtp`` of one subscribed track."""

    track_sid: Sid
    kind: Kind
    bytes_received: Counter
    packets_received: Counter
    packets_lost: Counter
    jitter: Seconds | None = None
    expected_bitrate: BitsPerSecond | None = None
    muted: bool | None = None
    """Not a getStats field: true while the remote has muted this track (the app learns it
    from its signalling), so that its silence is not taken for a stalled downlink."""


class StatsSample(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """One participant's stats at one moment.

    ``seq`` increases per participant and is how the engine drops duplicates and stale
    (out-of-order) samples; ``timestamp`` is ms since the epoch on the client's clock.
    """

    schema: Literal["netquality.stats.v1"]
    room_sid: Sid
    participant_sid: Sid
    region: Region
    timestamp: TimestampMs
    seq: Counter
    connection_state: ConnectionState
    candidate_pair: CandidatePair | None = None
    outbound: Annotated[list[OutboundTrack], Meta(max_length=MAX_TRACKS)] = msgspec.field(
        default_factory=list
    )
    inbound: Annotated[list[InboundTrack], Meta(max_length=MAX_TRACKS)] = msgspec.field(
        default_factory=list
    )
    topology: Topology | None = None
    """``sfu`` or ``p2p`` (optional): in a two-party P2P call the publisher's uplink and the
    subscriber's downlink carry the same packets, so the room cannot say whose network lost
    them; through an SFU it can (docs/levels.md, Whose network)."""
