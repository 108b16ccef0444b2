"""One region's alert: the latest summary of each of its rooms and one tracker
(:class:`RegionAlerts`)."""

from __future__ import annotations

import heapq

import msgspec

from pipelines.contracts.alert import AlertEvent, AlertParticipant
from pipelines.quality.alerting.events import _event
from pipelines.quality.alerting.room import RoomSummary
from pipelines.quality.alerting.rules import AlertRule, AlertRules
from pipelines.quality.alerting.tracker import AlertTracker, Snapshot
from pipelines.quality.room.sums import LevelTally, beside


class RegionAlerts(msgspec.Struct, array_like=True, dict=True):
    """Alert state of one region: the latest summary of each of its rooms and one tracker.

    A region can hold thousands of rooms and a summary arrives for every change of one of
    them, so what each summary needs (the counts, the worst level) comes from running totals
    (:class:`RegionTotals`, kept beside the state, not in it), and the full snapshot, with its
    worst participants, is built only for an event. Summing every room per summary made a
    region-wide degradation quadratic: minutes of CPU at 20,000 rooms.
    """

    region: str
    clock_ms: int = 0
    rooms: dict[str, RoomSummary] = msgspec.field(default_factory=dict)
    tracker: AlertTracker = msgspec.field(default_factory=AlertTracker)

    def apply(self, summary: RoomSummary, rules: AlertRules) -> list[AlertEvent]:
        """Take one room's new counts; return the region alert events due."""
        previous = self.rooms.get(summary.room_sid)
        if previous is not None and summary.timestamp < previous.timestamp:
            return []  # an older summary replayed after a newer one
        now = max(summary.timestamp, self.clock_ms)
        out = self.advance(now, rules)
        totals = self._totals()
        if previous is not None:
            totals.remove(previous)
        if summary.participants:
            self.rooms[summary.room_sid] = summary
            totals.add(summary)
        else:
            self.rooms.pop(summary.room_sid, None)
        self.tracker.observe(now, totals.meets(rules.region))
        out.extend(self.advance(now, rules))
        return out

    def advance(self, now: int, rules: AlertRules) -> list[AlertEvent]:
        now = max(now, self.clock_ms)
        self.clock_ms = now
        tracker = self.tracker
        if tracker.since is None or not (tracker.condition or tracker.is_open):
            return []  # nothing can be due (see AlertTracker.advance)
        due = tracker.advance(
            now, rules.region, rules, self._counts(rules), f"region_degraded:{self.region}"
        )
        if not due:
            return []
        snap = self._snapshot(rules)
        return [
            _event("region_degraded", status, at, alert_id, tracker, snap, self.region)
            for status, at, alert_id in due
        ]

    @property
    def is_idle(self) -> bool:
        return not self.rooms and not self.tracker.is_open

    def _totals(self) -> RegionTotals:
        """The running totals, summed once after the state was decoded (or built)."""
        return beside(self, "_running", self._sum_rooms)

    def _sum_rooms(self) -> RegionTotals:
        totals = RegionTotals()
        for room in self.rooms.values():
            totals.add(room)
        return totals

    def _counts(self, rules: AlertRules) -> Snapshot:
        """What the tracker reads (counts, worst level), from the totals: O(1)."""
        totals = self._totals()  # worst_count >= 1, so the worst level is the lowest
        return Snapshot(totals.participants, totals.degraded, [], {}, totals.lowest())

    def _snapshot(self, rules: AlertRules) -> Snapshot:
        """The whole snapshot an event carries, summed over every room."""
        participants = sum(r.participants for r in self.rooms.values())
        degraded = sum(r.degraded for r in self.rooms.values())
        worst = heapq.nsmallest(
            rules.worst_count,
            (p for r in self.rooms.values() for p in r.worst),
            key=_worst_order,
        )
        metrics: dict[str, int] = {}
        for r in self.rooms.values():
            for name, n in r.limiting_metrics.items():
                metrics[name] = metrics.get(name, 0) + n
        return Snapshot(participants, degraded, worst, metrics)


def _worst_order(p: AlertParticipant) -> tuple[int, str, str]:
    return (p.level, p.room_sid or "", p.participant_sid)


class RegionTotals:
    """A region's sums over its rooms' latest summaries, kept as summaries come and go."""

    __slots__ = ("degraded", "participants", "rooms_at_level")

    def __init__(self) -> None:
        self.participants = 0
        self.degraded = 0
        self.rooms_at_level = LevelTally()
        """Rooms by the worst level among their worst participants."""

    def add(self, room: RoomSummary, sign: int = 1) -> None:
        self.participants += sign * room.participants
        self.degraded += sign * room.degraded
        if room.worst:
            self.rooms_at_level.add(min(p.level for p in room.worst), sign)

    def remove(self, room: RoomSummary) -> None:
        self.add(room, -1)

    def lowest(self) -> int | None:
        return self.rooms_at_level.lowest()

    def meets(self, rule: AlertRule) -> bool:
        return Snapshot(self.participants, self.degraded, [], {}).meets(rule)
