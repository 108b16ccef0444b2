"""``netquality.level.v1``: a participant's level changed (or was seen for the first time).

Shaped like Twilio's ``networkQualityLevel`` / ``networkQualityStats`` so room services that
know that API recognise it: an overall level, per-media send/recv levels, and detailed stats
that explain each component level.
"""

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from pipelines.contracts.types import (
    BitsPerSecond,
    Fraction,
    Level,
    Region,
    Seconds,
    Sid,
    TimestampMs,
)

LEVEL_SCHEMA = "netquality.level.v1"

Metric = Literal["bandwidth", "fractionLost", "latency"]

EventId = Annotated[str, Meta(min_length=1, max_length=256)]
"""``"{participantSid}:{seq}"`` plus an optional suffix: a 128-char Sid and a 16-digit seq
must fit, so this is wider than :data:`Sid`."""


class BandwidthStats(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """Bitrate actually achieved against what the tracks demand and the network offers."""

    level: Level
    actual: BitsPerSecond | None = None
    available: BitsPerSecond | None = None
    demand: BitsPerSecond | None = None


class LossStats(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """Packet loss over the sample window."""

    level: Level
    fraction_lost: Fraction | None = None


class LatencyStats(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """Round-trip time and jitter, seconds."""

    level: Level
    rtt: Seconds | None = None
    jitter: Seconds | None = None


class ComponentStats(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """Why one component (say video send) has its level: each metric with its own level."""

    bandwidth: BandwidthStats | None = None
    fraction_lost: LossStats | None = None
    latency: LatencyStats | None = None


class MediaLevels(msgspec.Struct, rename="camel", gc=False):
    """Send and receive levels of one media kind; ``None`` where no such track exists."""

    send: Level | None = None
    recv: Level | None = None
    send_stats: ComponentStats | None = None
    recv_stats: ComponentStats | None = None


class Cause(msgspec.Struct, rename="camel", gc=False):
    """Whose network explains what the participant receives: ``upstream`` names the publisher
    (and its track) whose uplink trouble the room attributed, so that the participant's own
    receive level did not fall for it (docs/levels.md, Whose network)."""

    kind: Literal["upstream"]
    participant_sid: Sid
    track_sid: Sid


class LevelEvent(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """A change of a participant's overall or any component level.

    ``event_id`` is ``"{participantSid}:{seq}"`` of the sample that caused it (with a suffix for
    events not caused by a sample), so replays produce the same id and sinks can upsert.
    ``limited_by`` names what holds the level down: ``"video.send.bandwidth"``,
    ``"connectionState"``, ``"staleness"``; ``None`` when the level is 5. ``cause`` (optional)
    says when a publisher's uplink, not the participant's own downlink, explains what it
    receives.
    """

    schema: Literal["netquality.level.v1"]
    event_id: EventId
    room_sid: Sid
    participant_sid: Sid
    region: Region
    timestamp: TimestampMs
    level: Level
    previous_level: Level | None
    audio: MediaLevels
    video: MediaLevels
    limited_by: str | None = None
    departed: bool = False
    cause: Cause | None = None
