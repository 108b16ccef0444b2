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
"""

from __future__ import annotations

import heapq
import json
import math
from bisect import bisect_right
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from pipelines.contracts.alert import ALERT_SCHEMA, AlertEvent, AlertParticipant
from pipelines.contracts.level import LevelEvent
from pipelines.quality.packing import ExactEncoder
from pipelines.quality.room_level import RoomLevel

AlertKind = Literal["room_degraded", "region_degraded", "participant_stuck"]
Status = Literal["opened", "updated", "resolved"]


# -- rules ---------------------------------------------------------------------------------------


class AlertRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When one kind of scope counts as degraded, and how its alert opens and resolves."""

    at_or_below: int
    """A participant counts as degraded at this level or lower."""
    min_share: float
    """Share of the scope's participants that must be degraded (0..1)."""
    min_degraded: int
    """And at least this many of them (a share of a tiny room says little)."""
    sustain_s: float
    """The condition must hold this long before the alert opens."""
    resolve_after_s: float
    """The condition must stay false this long before the alert resolves."""
    reopen_cooldown_s: float
    """After a resolution, no new alert for the same scope opens before this."""


ROOM_RULE = AlertRule(
    at_or_below=2, min_share=0.5, min_degraded=2,
    sustain_s=15.0, resolve_after_s=20.0, reopen_cooldown_s=60.0,
)  # fmt: skip
"""Room degraded: half the room (and at least two people) at level <= 2 ("bad" or worse).

* level <= 2: LiveKit and Twilio both call 2 "poor/bad"; users notice frozen video or robotic
  audio there, whereas 3 is merely "average".
* >= 50 %: one bad participant is that participant's problem (their own stuck alert covers it);
  when half the room suffers, the call as a whole is degraded and a room service should act.
* >= 2: in a two-person room one bad link already degrades the call for both, but a single
  participant alone in a room is not a room problem.
* 15 s: levels are already smoothed (worse news fast, better news held), so 15 s is long enough
  to skip a transient dip (a Wi-Fi roam, a key frame burst) yet far shorter than a user's
  patience before leaving a call (~30-60 s).
* 20 s to resolve: longer than the levels' upgrade dwell plus a smoothing window, so one good
  reading does not close it; a demo incident of ~40 s still opens and resolves within 2 minutes.
* 60 s cool-down: a room that flaps faster than that stays one alert, not a page per flap.
"""

REGION_RULE = AlertRule(
    at_or_below=2, min_share=0.25, min_degraded=10,
    sustain_s=30.0, resolve_after_s=60.0, reopen_cooldown_s=300.0,
)  # fmt: skip
"""Region degraded: a quarter of a region's participants (and at least ten) at level <= 2.

A region holds many independent networks; a quarter of them bad at once points at shared
infrastructure (a media server, a peering link), not at users' Wi-Fi. Ten participants keep a
quiet region's three unlucky users from paging anyone. 30 s / 60 s / 5 min are slower than the
room rule because regional incidents are slower and paging an on-call engineer is expensive.
"""

PARTICIPANT_RULE = AlertRule(
    at_or_below=1, min_share=1.0, min_degraded=1,
    sustain_s=30.0, resolve_after_s=20.0, reopen_cooldown_s=120.0,
)  # fmt: skip
"""Participant stuck: one participant at level <= 1 ("very bad" or broken) for 30 s.

Level 1 means the call is barely usable for them; 30 s rules out reconnect blips (level 0 for a
few seconds during an ICE restart) while still telling support before the user gives up.
"""


class AlertRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """All alert rules; :func:`load_alert_rules` reads overrides from a file and environment."""

    room: AlertRule = ROOM_RULE
    region: AlertRule = REGION_RULE
    participant: AlertRule = PARTICIPANT_RULE
    update_interval_s: float = 10.0
    """Open alerts are updated at most this often: enough for a dashboard, not a flood."""
    update_share_delta: float = 0.1
    """A change of the degraded share by 10 points is news; one person more or less in a large
    room is not."""
    worst_count: int = 5
    """Worst participants named per alert: enough to act on, small enough to read."""
    allowed_lateness_s: float = 5.0
    """A room's events are applied in time order this long after they happen: a room's
    participants sit in different partitions, and producer batching plus the re-keying hop
    reorder them by up to a few seconds (the rollups allow the same). Alerts are late by as
    much, which is small against the 15 s sustain."""

    def __post_init__(self) -> None:
        for name in ("room", "region", "participant"):
            rule: AlertRule = getattr(self, name)
            if not 0 <= rule.at_or_below <= 5:
                raise ValueError(f"alert rule {name}.at_or_below must be a level 0..5")
            if not 0.0 < rule.min_share <= 1.0 or rule.min_degraded < 1:
                raise ValueError(f"alert rule {name}: min_share in (0, 1], min_degraded >= 1")
            if min(rule.sustain_s, rule.resolve_after_s, rule.reopen_cooldown_s) < 0:
                raise ValueError(f"alert rule {name}: durations must be >= 0 s")
        if not 1 <= self.worst_count <= 20:
            raise ValueError("alert rules: worst_count must be 1..20 (the contract's maximum)")


def load_alert_rules(
    path: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> AlertRules:
    """Defaults, then a JSON file of partial overrides, then single-field overrides.

    The file looks like ``{"room": {"sustain_s": 10}, "worst_count": 3}``; ``overrides`` maps
    ``"room.sustain_s"`` style names to values (the settings' environment overrides).
    Unknown names are errors, so a typo never silently leaves a default in force.
    """
    data: dict[str, Any] = msgspec.to_builtins(AlertRules())
    if path is not None:
        try:
            extra = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read alert rules file {path}: {exc}") from exc
        if not isinstance(extra, dict):
            raise ValueError(f"alert rules file {path} must hold a JSON object")
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        scope, _, field = name.partition(".")
        if field:
            data.setdefault(scope, {})[field] = value
        else:
            data[scope] = value
    try:
        return msgspec.convert(data, AlertRules)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid alert rules: {exc}") from exc


# -- one scope's lifecycle -----------------------------------------------------------------------


class Snapshot(msgspec.Struct, frozen=True):
    """What a scope looks like now: the counts and names an alert event carries."""

    participants: int
    degraded: int
    worst: list[AlertParticipant]
    limiting_metrics: dict[str, int]
    lowest: int | None = None
    """The worst level when ``worst`` is left out: a region's counts-only snapshot."""

    @property
    def share(self) -> float:
        return self.degraded / self.participants if self.participants else 0.0

    @property
    def worst_level(self) -> int | None:
        if self.worst:
            return min(p.level for p in self.worst)
        return self.lowest

    def meets(self, rule: AlertRule) -> bool:
        return self.degraded >= rule.min_degraded and self.share >= rule.min_share - 1e-9


EMPTY = Snapshot(0, 0, [], {})


def snapshot_of(
    levels: Mapping[str, tuple[int, str | None, str | None]], rule: AlertRule, worst_count: int
) -> Snapshot:
    """Count participants ``{sid: (level, limitedBy, roomSid)}`` against ``rule``."""
    degraded = [
        (lv, sid, lb, room) for sid, (lv, lb, room) in levels.items() if lv <= rule.at_or_below
    ]
    degraded.sort(key=lambda d: (d[0], d[1]))
    metrics: dict[str, int] = {}
    for _, _, limited_by, _ in degraded:
        if limited_by:
            metrics[limited_by] = metrics.get(limited_by, 0) + 1
    worst = [
        AlertParticipant(participant_sid=sid, level=lv, room_sid=room, limited_by=lb)
        for lv, sid, lb, room in degraded[:worst_count]
    ]
    return Snapshot(len(levels), len(degraded), worst, metrics)


class AlertTracker(msgspec.Struct, array_like=True):
    """The lifecycle of one scope's alert (see the module docstring for the rules)."""

    condition: bool = False
    since: int | None = None
    """When ``condition`` last became what it is (ms)."""
    observed_at: int = 0
    """When the scope last changed (its snapshot is constant since)."""
    alert_id: str | None = None
    """Set while an alert is open."""
    opened_at: int | None = None
    last_emit_at: int | None = None
    last_share: float = 0.0
    last_worst_level: int | None = None
    resolved_at: int | None = None
    """When the scope's last alert resolved (for the cool-down)."""
    opened_count: int = 0

    @property
    def is_open(self) -> bool:
        return self.alert_id is not None

    @property
    def is_idle(self) -> bool:
        """Nothing open, nothing building up: the tracker may be forgotten (after cool-down)."""
        return not self.is_open and not self.condition

    def advance(
        self,
        now: int,
        rule: AlertRule,
        rules: AlertRules,
        snapshot: Snapshot,
        scope_id: str,
    ) -> list[tuple[Status, int, str]]:
        """Transitions due by ``now`` while the condition stayed as it is; ``(status, at, id)``.

        Open and resolve happen at the exact time they became due, not when evaluated.
        """
        out: list[tuple[Status, int, str]] = []
        if self.since is None:
            return out
        if self.condition and not self.is_open:
            due = self.since + int(rule.sustain_s * 1000)
            if self.resolved_at is not None:
                due = max(due, self.resolved_at + int(rule.reopen_cooldown_s * 1000))
            if due <= now:
                self.alert_id = f"{scope_id}:{due}"
                self.opened_at = due
                self.opened_count += 1
                self._emitted(due, snapshot)
                out.append(("opened", due, self.alert_id))
        elif self.condition and self.is_open:
            assert self.last_emit_at is not None
            material = (
                abs(snapshot.share - self.last_share) >= rules.update_share_delta - 1e-9
                or snapshot.worst_level != self.last_worst_level
            )
            due = max(self.last_emit_at + int(rules.update_interval_s * 1000), self.observed_at)
            if material and due <= now:
                self._emitted(due, snapshot)
                out.append(("updated", due, self.alert_id or ""))
        elif not self.condition and self.is_open:
            due = self.since + int(rule.resolve_after_s * 1000)
            if due <= now:
                alert_id = self.alert_id or ""
                self.alert_id = None
                self.resolved_at = due
                self.last_emit_at = due
                out.append(("resolved", due, alert_id))
        return out

    def observe(self, now: int, condition: bool) -> None:
        """The condition as of ``now`` (after applying whatever happened at ``now``)."""
        self.observed_at = now
        if condition != self.condition or self.since is None:
            self.condition = condition
            self.since = now

    def _emitted(self, at: int, snapshot: Snapshot) -> None:
        self.last_emit_at = at
        self.last_share = snapshot.share
        self.last_worst_level = snapshot.worst_level


def _event(
    kind: AlertKind, status: Status, at: int, alert_id: str, tracker: AlertTracker,
    snapshot: Snapshot, region: str, room_sid: str | None = None,
    participant_sid: str | None = None,
) -> AlertEvent:  # fmt: skip
    """The ``netquality.alert.v1`` message for one transition."""
    opened_at = tracker.opened_at if tracker.opened_at is not None else at
    who = participant_sid or room_sid or region
    if status == "resolved":
        message = f"{who} recovered after {(at - opened_at) / 1000:.0f} s"
    elif kind == "participant_stuck":
        worst = snapshot.worst[0] if snapshot.worst else None
        level = worst.level if worst else "?"
        why = f" (limited by {worst.limited_by})" if worst and worst.limited_by else ""
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


# -- rooms ---------------------------------------------------------------------------------------


class Present(msgspec.Struct, array_like=True, frozen=True):
    """A participant's latest level in a room."""

    level: int
    limited_by: str | None
    event_ids: tuple[str, ...] = ()
    """Recent event ids, to drop replays of the same level event."""


class PendingLevel(msgspec.Struct, array_like=True, frozen=True):
    """A level event held until the room's watermark passes it (see :class:`RoomAlerts`)."""

    timestamp: int
    participant_sid: str
    level: int
    limited_by: str | None
    departed: bool
    event_id: str


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
        if event.room_sid != self.room_sid:
            raise ValueError(f"event of room {event.room_sid!r} applied to {self.room_sid!r}")
        current = self.present.get(event.participant_sid)
        if (current is not None and event.event_id in current.event_ids) or any(
            p.event_id == event.event_id for p in self.pending
        ):
            return [], None
        if event.region:
            self.region = event.region
        held = PendingLevel(
            event.timestamp, event.participant_sid, event.level, event.limited_by,
            event.departed, event.event_id,
        )  # fmt: skip
        self.pending.insert(bisect_right(self.pending, held.timestamp, key=_pending_time), held)
        self.max_event_ms = max(self.max_event_ms, event.timestamp)
        return self._release(self.max_event_ms - int(rules.allowed_lateness_s * 1000), rules)

    def advance(
        self, now: int, rules: AlertRules
    ) -> tuple[list[AlertEvent], RoomSummary | None]:
        """Move to stream time ``now`` (a sweep, for rooms whose events stopped)."""
        return self._release(now - int(rules.allowed_lateness_s * 1000), rules)

    def catch_up(self, now: int, rules: AlertRules) -> list[AlertEvent]:
        """What sweeps to stream time ``now`` did to this room while it was not decoded and
        had nothing due (``pipelines.quality.alerting_due``): its clock, and stuck trackers
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
                self.present[held.participant_sid] = Present(held.level, held.limited_by, ids)
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
        for sid, tracker in list(self.stuck.items()):
            psnap = self._participant_snapshot(sid, rules)
            for status, at, alert_id in tracker.advance(
                now, rules.participant, rules, psnap, f"participant_stuck:{sid}"
            ):
                out.append(
                    _event("participant_stuck", status, at, alert_id, tracker, psnap,
                           self.region, room_sid=self.room_sid, participant_sid=sid)
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

    def _observe(self, now: int, rules: AlertRules) -> list[AlertEvent]:
        at_or_below = rules.room.at_or_below
        degraded = sum(1 for p in self.present.values() if p.level <= at_or_below)
        self.room.observe(now, Snapshot(len(self.present), degraded, [], {}).meets(rules.room))
        for sid, p in self.present.items():
            stuck = p.level <= rules.participant.at_or_below
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
        return snapshot_of({sid: (p.level, p.limited_by, None)}, rules.participant, 1)

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


# -- regions -------------------------------------------------------------------------------------


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
        totals: RegionTotals | None = getattr(self, "_running", None)
        if totals is None:
            totals = RegionTotals()
            for room in self.rooms.values():
                totals.add(room)
            self._running = totals
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
        self.rooms_at_level: dict[int, int] = {}
        """Rooms by the worst level among their worst participants (levels are 0-5)."""

    def add(self, room: RoomSummary, sign: int = 1) -> None:
        self.participants += sign * room.participants
        self.degraded += sign * room.degraded
        if room.worst:
            level = min(p.level for p in room.worst)
            count = self.rooms_at_level.get(level, 0) + sign
            if count:
                self.rooms_at_level[level] = count
            else:
                del self.rooms_at_level[level]

    def remove(self, room: RoomSummary) -> None:
        self.add(room, -1)

    def lowest(self) -> int | None:
        return min(self.rooms_at_level, default=None)

    def meets(self, rule: AlertRule) -> bool:
        return Snapshot(self.participants, self.degraded, [], {}).meets(rule)


def max_opens(window_ms: int, rule: AlertRule) -> int:
    """Upper bound on alerts one scope can open within ``window_ms`` under ``rule``."""
    cycle = int(rule.resolve_after_s * 1000) + int(rule.reopen_cooldown_s * 1000)
    return 1 + (math.ceil(window_ms / cycle) if cycle else window_ms)


# -- table encoding ------------------------------------------------------------------------------

_encoder = ExactEncoder()
_room_decoder = msgspec.msgpack.Decoder(RoomAlerts)
_region_decoder = msgspec.msgpack.Decoder(RegionAlerts)


def dump_room_alerts(state: RoomAlerts) -> bytes:
    return _encoder.encode(state)


def load_room_alerts(data: bytes) -> RoomAlerts:
    return _room_decoder.decode(data)


def dump_region_alerts(state: RegionAlerts) -> bytes:
    return _encoder.encode(state)


def load_region_alerts(data: bytes) -> RegionAlerts:
    return _region_decoder.decode(data)
