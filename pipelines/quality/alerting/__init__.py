"""Alert rules: room degraded, region degraded, participant stuck (pure: no clock, no I/O).

Each alert scope (a room, a region, a participant) has an :class:`AlertTracker`, a small state
machine over *event time*:

* **open** when the scope's condition has held continuously for ``sustain_s`` (and at least
  ``reopen_cooldown_s`` since the scope's previous alert resolved). The open event happens at the
  exact moment the condition became sustained, whenever it is evaluated, so replays and sweeps
  produce the same ``alertId`` (``"{kind}:{scope}:{openedAt}"``).
* **update** while open only on a *material* change (the degraded share moved by at least
  ``update_share_delta``, or the worst level changed) and at most every ``update_interval_s``.
* **resolve** once the condition has been false continuously for ``resolve_after_s``. A brief
  recovery inside the hold keeps the alert open, so a flapping room stays *one* open alert.

Together: an alert never opens twice while open, opens at most once per
``resolve_after_s + reopen_cooldown_s`` (a resolution needs the hold, a reopening the cool-down),
and every resolution closes an alert that was opened. That is the no-storm guarantee.

Rooms (:class:`RoomAlerts`) see each participant's latest level; each room hands a
:class:`RoomSummary` to its region (:class:`RegionAlerts`), which sums them. Time only moves
forward per scope: an event older than the scope's clock is applied at the clock.

Modules: ``rules``, ``tracker`` (one scope's lifecycle), ``events`` (the alert message),
``room`` and ``region`` (the two states), ``codec`` (their table bytes), ``due`` (the
sweeps' peek at a room's bytes) and ``logic`` (both states behind the room stages'
protocol, ``pipelines.quality.room.logic``).
"""

from __future__ import annotations

from pipelines.quality.alerting.codec import (
    dump_region_alerts,
    dump_room_alerts,
    load_region_alerts,
    load_room_alerts,
)
from pipelines.quality.alerting.events import AlertKind, _event
from pipelines.quality.alerting.region import RegionAlerts, RegionTotals
from pipelines.quality.alerting.room import (
    KEEP_EVENT_IDS,
    PendingLevel,
    Present,
    RoomAlerts,
    RoomSummary,
    decode_summary,
)
from pipelines.quality.alerting.rules import (
    PARTICIPANT_RULE,
    REGION_RULE,
    ROOM_RULE,
    AlertRule,
    AlertRules,
    load_alert_rules,
    max_opens,
)
from pipelines.quality.alerting.tracker import (
    EMPTY,
    AlertTracker,
    Snapshot,
    Status,
    snapshot_of,
    tracker_due_at,
)

__all__ = [
    "EMPTY",
    "KEEP_EVENT_IDS",
    "PARTICIPANT_RULE",
    "REGION_RULE",
    "ROOM_RULE",
    "AlertKind",
    "AlertRule",
    "AlertRules",
    "AlertTracker",
    "PendingLevel",
    "Present",
    "RegionAlerts",
    "RegionTotals",
    "RoomAlerts",
    "RoomSummary",
    "Snapshot",
    "Status",
    "_event",
    "decode_summary",
    "dump_region_alerts",
    "dump_room_alerts",
    "load_alert_rules",
    "load_region_alerts",
    "load_room_alerts",
    "max_opens",
    "snapshot_of",
    "tracker_due_at",
]
