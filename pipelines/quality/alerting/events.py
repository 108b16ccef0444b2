"""The ``netquality.alert.v1`` message of one tracker transition."""

from __future__ import annotations

from typing import Literal

from pipelines.contracts.alert import ALERT_SCHEMA, AlertEvent
from pipelines.quality.alerting.tracker import AlertTracker, Snapshot, Status

AlertKind = Literal["room_degraded", "region_degraded", "participant_stuck"]


def _event(
    kind: AlertKind, status: Status, at: int, alert_id: str, tracker: AlertTracker,
    snapshot: Snapshot, region: str, room_sid: str | None = None,
    participant_sid: str | None = None, subscribers: int = 0,
) -> AlertEvent:  # fmt: skip
    """The ``netquality.alert.v1`` message for one transition; ``subscribers``: how many of
    the room's subscribers name this participant's uplink (whose network)."""
    opened_at = tracker.opened_at if tracker.opened_at is not None else at
    who = participant_sid or room_sid or region
    if status == "resolved":
        message = f"{who} recovered after {(at - opened_at) / 1000:.0f} s"
    elif kind == "participant_stuck":
        worst = snapshot.worst[0] if snapshot.worst else None
        level = worst.level if worst else "?"
        why = f" (limited by {worst.limited_by})" if worst and worst.limited_by else ""
        if subscribers:
            s = "" if subscribers == 1 else "s"
            message = f"{who}'s uplink limits {subscribers} subscriber{s}: level {level}{why}"
        else:
            message = f"{who} stuck at level {level}{why}"
    else:
        message = (
            f"{who}: {snapshot.degraded} of {snapshot.participants} participants "
            f"({snapshot.share:.0%}) at a bad level"
        )
        if snapshot.limiting_metrics:
            top = max(snapshot.limiting_metrics.items(), key=lambda kv: (kv[1], kv[0]))
            message += f", mostly {top[0]}"
    return AlertEvent(
        schema=ALERT_SCHEMA,  # type: ignore[arg-type]
        alert_id=alert_id,
        kind=kind,
        status=status,
        region=region,
        timestamp=at,
        opened_at=opened_at,
        participants=snapshot.participants,
        degraded=snapshot.degraded,
        share=round(min(1.0, snapshot.share), 4),
        room_sid=room_sid,
        participant_sid=participant_sid,
        resolved_at=at if status == "resolved" else None,
        worst=list(snapshot.worst),
        limiting_metrics=dict(snapshot.limiting_metrics),
        message=message[:1000],
    )
