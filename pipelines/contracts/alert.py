"""``netquality.alert.v1``: a room, region or participant degraded, changed, or recovered."""

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from pipelines.contracts.types import Fraction, Level, Region, Sid, TimestampMs

ALERT_SCHEMA = "netquality.alert.v1"

AlertKind = Literal["room_degraded", "region_degraded", "participant_stuck"]
AlertStatus = Literal["opened", "updated", "resolved"]


class AlertParticipant(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """One of the worst participants named in an alert, with what limits it."""

    participant_sid: Sid
    level: Level
    room_sid: Sid | None = None
    limited_by: str | None = None


class AlertEvent(msgspec.Struct, rename="camel", omit_defaults=True, gc=False):
    """An alert's lifecycle event. ``alert_id`` stays the same from opened to resolved."""

    schema: Literal["netquality.alert.v1"]
    alert_id: Annotated[str, Meta(min_length=1, max_length=256)]
    kind: AlertKind
    status: AlertStatus
    region: Region
    timestamp: TimestampMs
    opened_at: TimestampMs
    participants: Annotated[int, Meta(ge=0)]
    degraded: Annotated[int, Meta(ge=0)]
    share: Fraction
    room_sid: Sid | None = None
    participant_sid: Sid | None = None
    resolved_at: TimestampMs | None = None
    worst: Annotated[list[AlertParticipant], Meta(max_length=20)] = msgspec.field(
        default_factory=list
    )
    limiting_metrics: dict[str, Annotated[int, Meta(ge=0)]] = msgspec.field(default_factory=dict)
    message: Annotated[str, Meta(max_length=1000)] = ""
