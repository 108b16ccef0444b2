"""Whether a room's alert state can have work at a sweep, read without decoding all of it.

The alerts sweep visits every room each second, but a room has work only when a held event
is released or one of its trackers can move (open, update, resolve). A worker keeps most
room states as the msgpack bytes of its table, so :func:`load_room_due` reads just the
room's clock, tracker, pending events and stuck trackers (the participants are skipped as a
raw slice, and the pending events and stuck trackers are decoded only when there are some).

A room judged idle here would produce nothing if advanced: the sweep leaves it as bytes.
What advancing it would still have changed in memory (its clock, stuck trackers past their
cool-down) is applied when it is next decoded (:meth:`RoomAlerts.catch_up`).
"""

from __future__ import annotations

import msgspec
from msgspec import Raw

from pipelines.quality.alerting.room import PendingLevel, RoomAlerts
from pipelines.quality.alerting.rules import AlertRule, AlertRules
from pipelines.quality.alerting.tracker import AlertTracker, tracker_due_at
from pipelines.quality.room.codec import EMPTY_ARRAY, EMPTY_MAP, NIL, check_view


class TrackerView(msgspec.Struct, array_like=True, gc=False):
    """An :class:`AlertTracker` read for :func:`tracker_due` (not tracked by the garbage
    collector: the sweep reads one per room every second)."""

    condition: bool = False
    since: int | None = None
    observed_at: int = 0
    alert_id: str | None = None
    opened_at: int | None = None
    last_emit_at: int | None = None
    last_share: float = 0.0
    last_worst_level: int | None = None
    resolved_at: int | None = None
    opened_count: int = 0


check_view(TrackerView, AlertTracker, __name__)


class RoomAlertsDue(msgspec.Struct, array_like=True, gc=False):
    """A :class:`RoomAlerts` seen through its encoding: what tells whether a sweep has work."""

    room_sid: Raw
    region: Raw
    clock_ms: int = 0
    present: Raw = Raw(EMPTY_MAP)
    room: TrackerView = msgspec.field(default_factory=TrackerView)
    stuck: Raw = Raw(EMPTY_MAP)
    last_summary: Raw = Raw(NIL)
    pending: Raw = Raw(EMPTY_ARRAY)
    max_event_ms: int = 0

    def due(self, watermark: int, rules: AlertRules) -> bool:
        """Whether advancing the room to ``watermark`` (stream time less the allowed lateness:
        what :meth:`RoomAlerts.advance` releases up to) can release or emit anything."""
        if len(self.pending) > 1:  # not the empty array
            pending = _pending_decoder.decode(self.pending)
            if pending and pending[0].timestamp <= watermark:
                return True
        at = max(watermark, self.clock_ms)
        room = self.room
        if (room.condition or room.alert_id is not None) and tracker_due(
            room, at, rules.room, rules
        ):
            return True
        if len(self.stuck) == 1:  # the empty map
            return False
        trackers = _stuck_decoder.decode(self.stuck)
        return any(tracker_due(t, at, rules.participant, rules) for t in trackers.values())


check_view(RoomAlertsDue, RoomAlerts, __name__)

_decoder = msgspec.msgpack.Decoder(RoomAlertsDue)
_pending_decoder = msgspec.msgpack.Decoder(list[PendingLevel])
_stuck_decoder = msgspec.msgpack.Decoder(dict[str, TrackerView])


def load_room_due(data: bytes) -> RoomAlertsDue:
    """The sweep's view of a state encoded by
    :func:`~pipelines.quality.alerting.codec.dump_room_alerts`."""
    return _decoder.decode(data)


def tracker_due(
    tracker: AlertTracker | TrackerView, at: int, rule: AlertRule, rules: AlertRules
) -> bool:
    """Whether :meth:`AlertTracker.advance` to ``at`` can emit (an update is assumed material:
    telling needs the participants)."""
    due = tracker_due_at(tracker, rule, rules)
    return due is not None and due <= at
