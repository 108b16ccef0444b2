"""One room's alerts: room degraded and its participants' stuck alerts (:class:`RoomAlerts`),
and the summary each room hands its region."""

from __future__ import annotations

from bisect import bisect_right

import msgspec

from pipelines.contracts.alert import AlertEvent, AlertParticipant
from pipelines.contracts.level import LevelEvent
from pipelines.quality.alerting.events import _event
from pipelines.quality.alerting.rules import AlertRules
from pipelines.quality.alerting.tracker import EMPTY, AlertTracker, Snapshot, snapshot_of
from pipelines.quality.room.level import RoomLevel, check_room


class Present(msgspec.Struct, array_like=True, frozen=True):
    """A participant's latest level in a room."""

    level: int
    limited_by: str | None
    event_ids: tuple[str, ...] = ()
    """Recent event ids, to drop replays of the same level event."""
    cause: str | None = None
    """The publisher whose uplink its latest event names (whose network), if any."""


class PendingLevel(msgspec.Struct, array_like=True, frozen=True):
    """A level event held until the room's watermark passes it (see :class:`RoomAlerts`)."""

    timestamp: int
    participant_sid: str
    level: int
    limited_by: str | None
    departed: bool
    event_id: str
    cause: str | None = None


class RoomSummary(msgspec.Struct, frozen=True, rename="camel"):
    """A room's counts under the region rule, handed to the region stage (keyed by region)."""

    room_sid: str
    region: str
    timestamp: int
    participants: int
    degraded: int
    worst: list[AlertParticipant] = msgspec.field(default_factory=list)
    limiting_metrics: dict[str, int] = msgspec.field(default_factory=dict)

    def encode(self) -> bytes:
        return msgspec.json.encode(self)


def decode_summary(data: bytes) -> RoomSummary:
    return msgspec.json.decode(data, type=RoomSummary)


KEEP_EVENT_IDS = 4


def _pending_time(p: PendingLevel) -> int:
    return p.timestamp


class RoomAlerts(msgspec.Struct, array_like=True):
    """Alert state of one room: room degraded and its participants' stuck alerts.

    A room's level events come from many participants, hence from many partitions of the
    levels topic, so they reach the room slightly out of order (producer batching, the
    re-keying hop). Events are therefore held in ``pending`` and applied in time order once
    the room's watermark (newest event time minus ``allowed_lateness_s``, or the sweep's
    stream time minus the same) passes them; the room's clock is that watermark. An event
    older than the clock is applied at the clock. A value for a changelog-backed table keyed
    by room (:func:`dump_room_alerts`).
    """

    room_sid: str
    region: str
    clock_ms: int = 0
    present: dict[str, Present] = msgspec.field(default_factory=dict)
    room: AlertTracker = msgspec.field(default_factory=AlertTracker)
    stuck: dict[str, AlertTracker] = msgspec.field(default_factory=dict)
    last_summary: tuple[int, int, int | None] | None = None
    """(participants, degraded, worst level) last sent to the region."""
    pending: list[PendingLevel] = msgspec.field(default_factory=list)
    max_event_ms: int = 0

    def apply(
        self, event: LevelEvent | RoomLevel, rules: AlertRules
    ) -> tuple[list[AlertEvent], RoomSummary | None]:
        """Take one level event; return the alert events due and a changed region summary."""
        check_room(self.room_sid, event)
        current = self.present.get(event.participant_sid)
        if (current is not None and event.event_id in current.event_ids) or any(
            p.event_id == event.event_id for p in self.pending
        ):
            return [], None
        if event.region:
            self.region = event.region
        cause = event.cause
        held = PendingLevel(
            event.timestamp, event.participant_sid, event.level, event.limited_by,
            event.departed, event.event_id, None if cause is None else cause.participant_sid,
        )  # fmt: skip
        self.pending.insert(bisect_right(self.pending, held.timestamp, key=_pending_time), held)
        self.max_event_ms = max(self.max_event_ms, event.timestamp)
        return self._release(self.max_event_ms - int(rules.allowed_lateness_s * 1000), rules)

    def advance(self, now: int, rules: AlertRules) -> tuple[list[AlertEvent], RoomSummary | None]:
        """Move to stream time ``now`` (a sweep, for rooms whose events stopped)."""
        return self._release(now - int(rules.allowed_lateness_s * 1000), rules)

    def catch_up(self, now: int, rules: AlertRules) -> list[AlertEvent]:
        """What sweeps to stream time ``now`` did to this room while it was not decoded and
        had nothing due (``pipelines.quality.alerting.due``): its clock, and stuck trackers
        forgotten after their cool-down. Held events stay held (a later sweep releases them);
        the result is empty when nothing was due, as the sweep found."""
        return self._advance_trackers(now - int(rules.allowed_lateness_s * 1000), rules)

    def _release(
        self, watermark: int, rules: AlertRules
    ) -> tuple[list[AlertEvent], RoomSummary | None]:
        out: list[AlertEvent] = []
        summary: RoomSummary | None = None
        while self.pending and self.pending[0].timestamp <= watermark:
            held = self.pending.pop(0)
            now = max(held.timestamp, self.clock_ms)
            out.extend(self._advance_trackers(now, rules))
            current = self.present.get(held.participant_sid)
            if held.departed:
                self.present.pop(held.participant_sid, None)
            else:
                ids = (*(current.event_ids if current else ()), held.event_id)[-KEEP_EVENT_IDS:]
                self.present[held.participant_sid] = Present(
                    held.level, held.limited_by, ids, held.cause
                )
            out.extend(self._observe(now, rules))
            summary = self._summary(now, rules) or summary
        out.extend(self._advance_trackers(watermark, rules))
        return out, summary

    def _advance_trackers(self, now: int, rules: AlertRules) -> list[AlertEvent]:
        """Transitions due by ``now`` while nothing changed in the room."""
        now = max(now, self.clock_ms)
        self.clock_ms = now
        out: list[AlertEvent] = []
        room = self.room
        if room.since is not None and (room.condition or room.is_open):  # else nothing is due
            snap = self._room_snapshot(rules)
            for status, at, alert_id in room.advance(
                now, rules.room, rules, snap, f"room_degraded:{self.room_sid}"
            ):
                out.append(_event("room_degraded", status, at, alert_id, room, snap,
                                  self.region, room_sid=self.room_sid))  # fmt: skip
        named = self._named() if self.stuck else {}
        for sid, tracker in list(self.stuck.items()):
            psnap = self._participant_snapshot(sid, rules)
            for status, at, alert_id in tracker.advance(
                now, rules.participant, rules, psnap, f"participant_stuck:{sid}"
            ):
                out.append(
                    _event("participant_stuck", status, at, alert_id, tracker, psnap,
                           self.region, room_sid=self.room_sid, participant_sid=sid,
                           subscribers=named.get(sid, 0))
                )  # fmt: skip
            self._forget_if_idle(sid, tracker, now, rules)
        return out

    @property
    def is_idle(self) -> bool:
        """Nobody present and nothing open: the table entry may be deleted.

        The room's cool-down is forgotten with it; a room that empties has no flapping left.
        """
        return not self.present and not self.pending and not self.room.is_open and not self.stuck

    @property
    def open_alerts(self) -> list[str]:
        ids = [self.room.alert_id] if self.room.alert_id else []
        return ids + [t.alert_id for t in self.stuck.values() if t.alert_id]

    def _named(self) -> dict[str, int]:
        """Present publishers -> how many present subscribers' events name their uplink."""
        named: dict[str, int] = {}
        present = self.present
        for p in present.values():
            if p.cause is not None and p.cause in present:
                named[p.cause] = named.get(p.cause, 0) + 1
        return named

    def _observe(self, now: int, rules: AlertRules) -> list[AlertEvent]:
        """The room's and each participant's condition after a change (whose network: a
        participant whose trouble a present publisher's uplink explains is not the room's
        trouble, and a publisher whose uplink limits ``room.min_degraded`` subscribers or
        more while it is at the room's bad level gets the participant alert instead)."""
        at_or_below = rules.room.at_or_below
        present = self.present
        degraded = sum(
            1 for p in present.values()
            if p.level <= at_or_below and (p.cause is None or p.cause not in present)
        )  # fmt: skip
        self.room.observe(now, Snapshot(len(present), degraded, [], {}).meets(rules.room))
        named = self._named()
        for sid, p in present.items():
            stuck = p.level <= rules.participant.at_or_below or (
                p.level <= at_or_below and named.get(sid, 0) >= rules.room.min_degraded
            )
            tracker = self.stuck.get(sid)
            if tracker is None and stuck:
                tracker = self.stuck[sid] = AlertTracker()
            if tracker is not None:
                tracker.observe(now, stuck)
        for sid, tracker in self.stuck.items():  # departed: recovered for the stuck rule
            if sid not in self.present:
                tracker.observe(now, False)
        out = self._departed_resolutions(now, rules)
        out.extend(self._advance_trackers(now, rules))  # sustain 0, or an update due now
        return out

    def _departed_resolutions(self, now: int, rules: AlertRules) -> list[AlertEvent]:
        """A stuck participant who left resolves at once: nobody is stuck any more."""
        out: list[AlertEvent] = []
        for sid in [s for s in self.stuck if s not in self.present]:
            tracker = self.stuck.pop(sid)
            if tracker.alert_id:
                out.append(_event("participant_stuck", "resolved", now, tracker.alert_id,
                                  tracker, EMPTY, self.region, room_sid=self.room_sid,
                                  participant_sid=sid))  # fmt: skip
        return out

    def _forget_if_idle(self, sid: str, tracker: AlertTracker, now: int, rules: AlertRules) -> None:
        cooled = tracker.resolved_at is None or (
            now - tracker.resolved_at >= int(rules.participant.reopen_cooldown_s * 1000)
        )
        if tracker.is_idle and cooled:
            del self.stuck[sid]

    def _levels(self) -> dict[str, tuple[int, str | None, str | None]]:
        return {sid: (p.level, p.limited_by, None) for sid, p in self.present.items()}

    def _room_snapshot(self, rules: AlertRules) -> Snapshot:
        return snapshot_of(self._levels(), rules.room, rules.worst_count)

    def _participant_snapshot(self, sid: str, rules: AlertRules) -> Snapshot:
        p = self.present.get(sid)
        if p is None:
            return EMPTY
        # Above the stuck rule's level, only a publisher whose uplink limits the room is held
        # (see _observe): judged at the room's bad level, so the alert names its level.
        rule = rules.participant if p.level <= rules.participant.at_or_below else rules.room
        return snapshot_of({sid: (p.level, p.limited_by, None)}, rule, 1)

    def _summary(self, now: int, rules: AlertRules) -> RoomSummary | None:
        levels = {sid: (p.level, p.limited_by, self.room_sid) for sid, p in self.present.items()}
        snap = snapshot_of(levels, rules.region, rules.worst_count)
        key = (snap.participants, snap.degraded, snap.worst_level)
        if key == self.last_summary:
            return None
        self.last_summary = key
        return RoomSummary(
            self.room_sid, self.region, now, snap.participants, snap.degraded,
            snap.worst, snap.limiting_metrics,
        )  # fmt: skip
