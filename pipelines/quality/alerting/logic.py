"""The alert states behind the room stages' protocol (``pipelines.quality.room.logic``).

Thin adapters: each call is what ``pipelines/streaming/alerts.py`` does with the state
today, so a generic stage driving these emits what that stage emits. The rules are the
kind's, so a stage holds them once.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.contracts.alert import AlertEvent
from pipelines.quality.alerting.codec import (
    dump_region_alerts,
    dump_room_alerts,
    load_region_alerts,
    load_room_alerts,
)
from pipelines.quality.alerting.region import RegionAlerts
from pipelines.quality.alerting.room import RoomAlerts, RoomSummary
from pipelines.quality.alerting.rules import AlertRule, AlertRules
from pipelines.quality.alerting.tracker import AlertTracker, tracker_due_at
from pipelines.quality.room.level import RoomLevel
from pipelines.quality.room.logic import NOW

RoomOut = AlertEvent | RoomSummary
"""A room emits alert events and, when its counts change, a summary for its region."""


def _due(tracker: AlertTracker, rule: AlertRule, rules: AlertRules, clock_ms: int) -> int | None:
    """When ``tracker`` can next emit in the time of a scope whose clock is ``clock_ms``
    (the scope advances it to ``max(time, clock)``, so a due time behind the clock is due
    at any time)."""
    due = tracker_due_at(tracker, rule, rules)
    if due is None:
        return None
    return NOW if due <= clock_ms else due


class RoomAlertsLogic:
    """A room's alerts: level events in, alert events and region summaries out."""

    __slots__ = ("rules", "state")

    def __init__(self, state: RoomAlerts, rules: AlertRules) -> None:
        self.state = state
        self.rules = rules

    def apply(self, records: Sequence[RoomLevel], stream_time: int) -> Sequence[RoomOut]:
        if len(records) == 1:  # the stage's hot path: one level event, no list of our own
            alerts, summary = self.state.apply(records[0], self.rules)
            return alerts if summary is None else [*alerts, summary]
        out: list[RoomOut] = []
        for record in records:
            alerts, summary = self.state.apply(record, self.rules)
            out.extend(alerts)
            if summary is not None:
                out.append(summary)
        return out

    def advance(self, stream_time: int) -> list[RoomOut]:
        alerts, summary = self.state.advance(stream_time, self.rules)
        out: list[RoomOut] = list(alerts)
        if summary is not None:
            out.append(summary)
        return out

    def due_at(self) -> int | None:
        """The first held event's release, or a tracker's transition, in stream time (both
        happen at the room's watermark: stream time less the allowed lateness)."""
        state, rules = self.state, self.rules
        dues = [state.pending[0].timestamp] if state.pending else []
        trackers = [(state.room, rules.room)]
        trackers.extend((tracker, rules.participant) for tracker in state.stuck.values())
        for tracker, rule in trackers:
            due = _due(tracker, rule, rules, state.clock_ms)
            if due == NOW:
                return NOW
            if due is not None:
                dues.append(due)
        if not dues:
            return None
        return min(dues) + int(rules.allowed_lateness_s * 1000)

    def at_stop(self, stream_time: int) -> list[RoomOut]:
        return []

    def is_idle(self) -> bool:
        return self.state.is_idle

    def snapshot(self) -> bytes:
        return dump_room_alerts(self.state)


class RoomAlertsKind:
    """Makes :class:`RoomAlertsLogic` under ``rules``."""

    def __init__(self, rules: AlertRules) -> None:
        self.rules = rules

    def key_of(self, record: RoomLevel) -> str:
        return record.room_sid

    def start(self, record: RoomLevel, stream_time: int) -> RoomAlertsLogic:
        """A new room starts at the partition's watermark: no alert opens before the room
        was seen (an event before it is applied at it)."""
        at = max(0, stream_time - int(self.rules.allowed_lateness_s * 1000))
        return RoomAlertsLogic(RoomAlerts(record.room_sid, record.region, at), self.rules)

    def restore(self, data: bytes) -> RoomAlertsLogic:
        return RoomAlertsLogic(load_room_alerts(data), self.rules)


class RegionAlertsLogic:
    """A region's alert: room summaries in, region alert events out. A summary carries its
    room's time, so the region's clock is its partition's summaries' (no lateness)."""

    __slots__ = ("rules", "state")

    def __init__(self, state: RegionAlerts, rules: AlertRules) -> None:
        self.state = state
        self.rules = rules

    def apply(self, records: Sequence[RoomSummary], stream_time: int) -> list[AlertEvent]:
        out: list[AlertEvent] = []
        for record in records:
            out.extend(self.state.apply(record, self.rules))
        return out

    def advance(self, stream_time: int) -> list[AlertEvent]:
        return self.state.advance(stream_time, self.rules)

    def due_at(self) -> int | None:
        state = self.state
        return _due(state.tracker, self.rules.region, self.rules, state.clock_ms)

    def at_stop(self, stream_time: int) -> list[AlertEvent]:
        return []

    def is_idle(self) -> bool:
        return self.state.is_idle

    def snapshot(self) -> bytes:
        return dump_region_alerts(self.state)


class RegionAlertsKind:
    """Makes :class:`RegionAlertsLogic` under ``rules``."""

    def __init__(self, rules: AlertRules) -> None:
        self.rules = rules

    def key_of(self, record: RoomSummary) -> str:
        return record.region

    def start(self, record: RoomSummary, stream_time: int) -> RegionAlertsLogic:
        return RegionAlertsLogic(RegionAlerts(record.region), self.rules)

    def restore(self, data: bytes) -> RegionAlertsLogic:
        return RegionAlertsLogic(load_region_alerts(data), self.rules)
