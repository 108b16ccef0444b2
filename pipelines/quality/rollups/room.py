"""One room's minutes from its participants' level steps (:class:`RoomRollups`; the closing
rules are in the package docstring, ``pipelines.quality.rollups``)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import msgspec

from pipelines.contracts.level import LevelEvent
from pipelines.quality.rollups.minutes import LEVELS, MINUTE_MS, MinuteRollup, _aggregate, minute_of
from pipelines.quality.room.level import RoomLevel, check_room

DEFAULT_ALLOWED_LATENESS_MS = 5_000
"""Level events of one room come from one keyed stream; a few seconds covers producer batching
and the re-keying hop between the levels agent and the rollups agent."""
DEFAULT_KEEP_CLOSED_MINUTES = 2
"""Closed minutes that can still be corrected: enough for events a minute or two late (a worker
restart replaying its batch), small enough that a room's state stays a few hundred bytes."""


def next_close_watermark(watermark_ms: int) -> int:
    """The lowest watermark that closes a minute after ``watermark_ms``: the next minute's
    start (what :meth:`RoomRollups.advance` and the sweeps' peek both judge by)."""
    return minute_of(watermark_ms) + MINUTE_MS


class Step(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """A participant's level from ``timestamp`` until its next step; ``departed`` ends presence."""

    timestamp: int
    level: int
    departed: bool
    event_id: str


def _step_time(step: Step) -> int:
    return step.timestamp


class RoomRollups(msgspec.Struct, array_like=True):
    """Rollup state of one room: a value for a Faust table keyed by room (see :func:`dump_room`).

    Holds, per participant, its steps from the oldest retained minute on (plus the one step in
    force at that minute's start), and the last emitted version of the retained closed minutes.
    Everything older is pruned when the watermark moves, so memory is bounded by the participants
    present and the events of the last few minutes. :attr:`is_idle` says when the table entry
    can be deleted.
    """

    room_sid: str
    region: str
    allowed_lateness_ms: int = DEFAULT_ALLOWED_LATENESS_MS
    keep_closed_minutes: int = DEFAULT_KEEP_CLOSED_MINUTES
    watermark_ms: int | None = None
    """Highest watermark applied; minutes ending at or before it are closed."""
    max_event_ms: int | None = None
    timelines: dict[str, list[Step]] = msgspec.field(default_factory=dict)
    closed: dict[int, MinuteRollup] = msgspec.field(default_factory=dict)
    """Last emitted version of each retained closed minute, by minute start."""
    dropped_late: int = 0
    """Events too late to correct anything (their minute was no longer retained)."""
    duplicates: int = 0

    @classmethod
    def for_event(cls, event: LevelEvent | RoomLevel, **settings: int) -> RoomRollups:
        """A fresh state for the room of ``event`` (the first event seen for that room)."""
        return cls(room_sid=event.room_sid, region=event.region, **settings)

    # -- public API ------------------------------------------------------------------------------

    def apply(self, event: LevelEvent | RoomLevel) -> list[MinuteRollup]:
        """Take one level event; return the minutes it closed or corrected (usually none)."""
        check_room(self.room_sid, event)
        out: list[MinuteRollup] = []
        first_open = self.first_open_minute
        minute = minute_of(event.timestamp)
        correct_until = None  # set when the event falls into a closed minute
        if first_open is not None and minute < first_open:
            if minute < first_open - self.keep_closed_minutes * MINUTE_MS:
                self.dropped_late += 1
                return out
            correct_until = first_open
        if not self._insert(event):
            self.duplicates += 1
            return out
        if correct_until is not None:
            for m in range(minute, correct_until, MINUTE_MS):
                out.extend(self._close(m))
        if self.max_event_ms is None or event.timestamp > self.max_event_ms:
            self.max_event_ms = event.timestamp
        out.extend(self.advance(self.max_event_ms - self.allowed_lateness_ms))
        return out

    def advance(self, watermark_ms: int) -> list[MinuteRollup]:
        """Close every minute ending at or before ``watermark_ms``; return them (final, rev 0).

        Also the way to close a quiet room's minutes from outside (a partition-wide or timer
        watermark). A watermark lower than one already applied changes nothing.
        """
        if self.watermark_ms is not None and watermark_ms <= self.watermark_ms:
            return []
        old_first_open = self.first_open_minute
        self.watermark_ms = watermark_ms
        new_first_open = minute_of(watermark_ms)
        out: list[MinuteRollup] = []
        earliest = min((s[0].timestamp for s in self.timelines.values() if s), default=None)
        if earliest is not None:
            m = minute_of(earliest)
            if old_first_open is not None:
                m = max(m, old_first_open)
            while m < new_first_open:
                out.extend(self._close(m))
                m = self._next_active_minute(m + MINUTE_MS, new_first_open)
        self._prune()
        return out

    @property
    def first_open_minute(self) -> int | None:
        """Start of the first minute not closed yet; ``None`` before any watermark."""
        return None if self.watermark_ms is None else minute_of(self.watermark_ms)

    @property
    def horizon_minute(self) -> int | None:
        """Oldest minute still correctable; events before it are dropped as too late."""
        first_open = self.first_open_minute
        return None if first_open is None else first_open - self.keep_closed_minutes * MINUTE_MS

    @property
    def due_watermark(self) -> int | None:
        """The lowest watermark at which :meth:`advance` can emit or prune a minute (the end
        of the first minute it has not closed); ``None`` when nothing is held: only an
        event can give the room work."""
        if self.watermark_ms is not None:
            held = self.timelines or self.closed
            return next_close_watermark(self.watermark_ms) if held else None
        earliest = min((s[0].timestamp for s in self.timelines.values() if s), default=None)
        return None if earliest is None else next_close_watermark(earliest)

    @property
    def is_idle(self) -> bool:
        """Nobody present and no closed minute left to correct: the entry may be deleted.

        Deleting earlier would let a late event start a fresh state that re-emits a minute with
        only that event in it, overwriting the complete one. Deleting also forgets the
        watermark, so an event older than that arriving afterwards is taken as new; that is
        a minutes-old straggler of an empty room, where keeping every room forever would cost
        more than this rare, bounded error.
        """
        return not self.timelines and not self.closed

    def open_minutes(self, until_ms: int) -> list[MinuteRollup]:
        """The minutes not closed yet, as they stand at ``until_ms`` (presence counted up to
        it, revision 0); the state is left as it is.

        For a graceful stop: without it, the minute in progress (half of a 94 s demo) would
        never be written. If the stream goes on later, the minute closes as usual and its
        full version replaces this one under the same key.
        """
        earliest = min((s[0].timestamp for s in self.timelines.values() if s), default=None)
        if earliest is None:
            return []
        m = minute_of(earliest)
        first_open = self.first_open_minute
        if first_open is not None:
            m = max(m, first_open)
        stop = minute_of(until_ms) + MINUTE_MS
        out: list[MinuteRollup] = []
        while m < until_ms:
            partial = self.minute(m, until_ms)
            if partial is not None:
                out.append(partial)
            m = self._next_active_minute(m + MINUTE_MS, stop)
        return out

    def minute(self, minute: int, until_ms: int | None = None) -> MinuteRollup | None:
        """Aggregate of ``minute`` from the steps held now (revision 0); ``None`` when empty.
        With ``until_ms``, only the part of the minute before it (a minute still open).

        Exact only for minutes at or after :attr:`horizon_minute` (older steps are pruned).
        """
        ms_at_level = [0] * LEVELS
        seen = 0
        min_level: int | None = None
        changes = 0
        end = minute + MINUTE_MS
        if until_ms is not None:
            end = min(end, until_ms)
        for steps in self.timelines.values():
            present = False
            start = max(bisect_left(steps, minute, key=_step_time) - 1, 0)
            for i in range(start, len(steps)):
                step = steps[i]
                if step.timestamp >= end:
                    break
                if step.timestamp >= minute:
                    changes += 1
                if step.departed:
                    continue
                seg_start = max(step.timestamp, minute)
                seg_end = min(steps[i + 1].timestamp, end) if i + 1 < len(steps) else end
                if seg_end > seg_start:
                    ms_at_level[step.level] += seg_end - seg_start
                    present = True
                    if min_level is None or step.level < min_level:
                        min_level = step.level
            seen += present
        if not seen and not changes:
            return None
        return _aggregate(
            "room", self.room_sid, self.region, minute, ms_at_level, seen, min_level, changes
        )

    # -- internals -------------------------------------------------------------------------------

    def _insert(self, event: LevelEvent | RoomLevel) -> bool:
        """Insert the event's step in time order; ``False`` for a replayed ``event_id``.

        Steps with equal timestamps keep arrival order, so the last one to arrive holds.
        """
        steps = self.timelines.setdefault(event.participant_sid, [])
        if any(s.event_id == event.event_id for s in steps):
            return False
        step = Step(event.timestamp, event.level, event.departed, event.event_id)
        steps.insert(bisect_right(steps, event.timestamp, key=_step_time), step)
        return True

    def _close(self, minute: int) -> list[MinuteRollup]:
        """Emit ``minute`` if it is new or differs from its last emitted version."""
        current = self.minute(minute)
        previous = self.closed.get(minute)
        if previous is None:
            if current is None:
                return []
            self.closed[minute] = current
            return [current]
        if current is None:  # a late departure removed everything: say so, don't go silent
            current = _aggregate(
                "room", self.room_sid, self.region, minute, [0] * LEVELS, 0, None, 0
            )
        if previous.same_aggregate(current):
            return []
        current = msgspec.structs.replace(current, revision=previous.revision + 1)
        self.closed[minute] = current
        return [current]

    def _next_active_minute(self, minute: int, stop: int) -> int:
        """``minute`` if anyone is present at its start, else the minute of the next step.

        Lets a watermark jump over hours of an empty room without walking every minute.
        """
        next_step: int | None = None
        for steps in self.timelines.values():
            i = bisect_left(steps, minute, key=_step_time)
            if i > 0 and not steps[i - 1].departed:
                return minute
            if i < len(steps) and (next_step is None or steps[i].timestamp < next_step):
                next_step = steps[i].timestamp
        return stop if next_step is None else min(minute_of(next_step), stop)

    def _prune(self) -> None:
        """Forget closed minutes and steps older than the horizon (keep the step in force)."""
        horizon = self.horizon_minute
        if horizon is None:
            return
        for minute in [m for m in self.closed if m < horizon]:
            del self.closed[minute]
        for sid in list(self.timelines):
            steps = self.timelines[sid]
            i = bisect_left(steps, horizon, key=_step_time)
            if i > 0:
                keep_from = i if steps[i - 1].departed else i - 1
                del steps[:keep_from]
            if not steps:
                del self.timelines[sid]
