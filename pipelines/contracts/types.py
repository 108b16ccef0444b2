"""Constrained scalar types shared by the contracts.

Bounds reject values no real client produces (negative counters, NaN-like huge numbers,
absurd RTTs) so that garbage is dead-lettered at the edge instead of skewing levels.
"""

from typing import Annotated, Literal

from msgspec import Meta

MAX_COUNTER = 2**53 - 1
"""Largest integer a JSON number carries exactly (IEEE-754 double); getStats counters fit."""

Sid = Annotated[str, Meta(min_length=1, max_length=128)]
"""Room, participant and track identifiers (Twilio SIDs are 34 chars; leave room for others)."""

Region = Annotated[str, Meta(min_length=1, max_length=64)]
TimestampMs = Annotated[int, Meta(ge=0, le=MAX_COUNTER)]
Counter = Annotated[int, Meta(ge=0, le=MAX_COUNTER)]
BitsPerSecond = Annotated[float, Meta(ge=0, le=1e11)]
"""Up to 100 Gbit/s: anything above is a unit mistake, not a network."""

Seconds = Annotated[float, Meta(ge=0, le=60)]
"""RTT and jitter in seconds; a minute of delay is already far past 'broken'."""

Fraction = Annotated[float, Meta(ge=0, le=1)]
Level = Annotated[int, Meta(ge=0, le=5)]
Kind = Literal["audio", "video"]
