"""One scope's alert lifecycle over event time (:class:`AlertTracker`; the rules are in the
package docstring, ``pipelines.quality.alerting``) and the snapshot it judges."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, Protocol

import msgspec

from pipelines.contracts.alert import AlertParticipant
from pipelines.quality.alerting.rules import AlertRule, AlertRules

Status = Literal["opened", "updated", "resolved"]


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
        due = tracker_due_at(self, rule, rules)
        if due is None or due > now:
            return out
        if not self.is_open:
            self.alert_id = f"{scope_id}:{due}"
            self.opened_at = due
            self.opened_count += 1
            self._emitted(due, snapshot)
            out.append(("opened", due, self.alert_id))
        elif self.condition:
            material = (
                abs(snapshot.share - self.last_share) >= rules.update_share_delta - 1e-9
                or snapshot.worst_level != self.last_worst_level
            )
            if material:
                self._emitted(due, snapshot)
                out.append(("updated", due, self.alert_id or ""))
        else:
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


class TrackerFields(Protocol):
    """What :func:`tracker_due_at` reads: an :class:`AlertTracker`, or the sweeps' view of
    one's bytes (``pipelines.quality.alerting.due``)."""

    @property
    def condition(self) -> bool: ...
    @property
    def since(self) -> int | None: ...
    @property
    def observed_at(self) -> int: ...
    @property
    def alert_id(self) -> str | None: ...
    @property
    def last_emit_at(self) -> int | None: ...
    @property
    def resolved_at(self) -> int | None: ...


def tracker_due_at(tracker: TrackerFields, rule: AlertRule, rules: AlertRules) -> int | None:
    """When the tracker's next transition is due (event time, ms) while its condition stays as
    it is; ``None`` when none can be (nothing open, nothing building up).

    An update is due only if material, which takes the participants to tell: this is when
    one *can* be, which is what the sweeps' peek needs. :meth:`AlertTracker.advance` and the
    peek both judge by this one function.
    """
    if tracker.since is None:
        return None
    is_open = tracker.alert_id is not None
    if tracker.condition and not is_open:
        due = tracker.since + int(rule.sustain_s * 1000)
        if tracker.resolved_at is not None:
            due = max(due, tracker.resolved_at + int(rule.reopen_cooldown_s * 1000))
        return due
    if tracker.condition:
        assert tracker.last_emit_at is not None
        return max(tracker.last_emit_at + int(rules.update_interval_s * 1000), tracker.observed_at)
    if is_open:
        return tracker.since + int(rule.resolve_after_s * 1000)
    return None
