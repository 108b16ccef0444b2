"""Region minutes as sums of the latest revision of each room's minute (:class:`RegionRollups`)."""

from __future__ import annotations

import msgspec

from pipelines.quality.rollups.minutes import (
    LEVELS,
    MINUTE_MS,
    MinuteRollup,
    Scope,
    _aggregate,
)
from pipelines.quality.room.sums import LevelTally, beside

DEFAULT_REGION_KEEP_MINUTES = 10
"""Region minutes kept for room re-emits. Rooms close minutes on their own watermarks, so a
quiet room may deliver a minute several minutes after a busy one; older room minutes are
dropped rather than allowed to overwrite a region minute with a partial sum."""


def sum_rollups(
    scope: Scope, scope_id: str, region: str, minute: int, parts: list[MinuteRollup]
) -> MinuteRollup:
    """One aggregate from disjoint parts of the same minute (rooms of a region).

    Seconds, participants and changes add (a participant is in one room at a time), the minimum
    is the minimum of the minima, and the average is recomputed from the summed seconds, which is
    the seconds-weighted mean of the parts' averages.
    """
    totals = MinuteTotals()
    for part in parts:
        totals.add(RoomPart.of(part))
    return totals.aggregate(scope, scope_id, region, minute)


class RoomPart(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """What a region keeps of one room's minute: its revision and what it adds.

    A region holds every room's minute for ``keep_minutes`` (for corrections), so this is per
    room and minute: ~30 bytes of msgpack and ~200 decoded, where the whole rollup was ~240
    and ~590 (at 20,000 rooms and 10 minutes, 1.9 KB per participant). Milliseconds are whole
    numbers (the room minute's seconds have 3 decimals).
    """

    revision: int
    ms0: int
    ms1: int
    ms2: int
    ms3: int
    ms4: int
    ms5: int
    participants_seen: int
    min_level: int | None
    changes: int

    @classmethod
    def of(cls, room: MinuteRollup) -> RoomPart:
        return cls(
            room.revision,
            *(round(seconds * 1000) for seconds in room.seconds_at_level),
            room.participants_seen,
            room.min_level,
            room.changes,
        )

    @property
    def ms_at_level(self) -> tuple[int, int, int, int, int, int]:
        return (self.ms0, self.ms1, self.ms2, self.ms3, self.ms4, self.ms5)

    def same_aggregate(self, other: RoomPart) -> bool:
        """Equal in everything but ``revision`` (see :meth:`MinuteRollup.same_aggregate`)."""
        return msgspec.structs.replace(other, revision=self.revision) == self


class MinuteTotals:
    """Sums over the parts of one minute, kept as parts come, go and are replaced.

    Milliseconds are whole numbers (a room minute's seconds have 3 decimals), so the sums are
    exact in any order: a region updated part by part gives what summing every part again
    gives, to the last bit of the average.
    """

    __slots__ = ("changes", "ms_at_level", "participants_seen", "parts_at_min")

    def __init__(self) -> None:
        self.ms_at_level = [0] * LEVELS
        self.participants_seen = 0
        self.changes = 0
        self.parts_at_min = LevelTally()
        """Parts by their minimum level (those with one)."""

    def add(self, part: RoomPart, sign: int = 1) -> None:
        ms = self.ms_at_level
        for level, part_ms in enumerate(part.ms_at_level):
            ms[level] += sign * part_ms
        self.participants_seen += sign * part.participants_seen
        self.changes += sign * part.changes
        if part.min_level is not None:
            self.parts_at_min.add(part.min_level, sign)

    def remove(self, part: RoomPart) -> None:
        self.add(part, -1)

    def aggregate(self, scope: Scope, scope_id: str, region: str, minute: int) -> MinuteRollup:
        return _aggregate(
            scope,
            scope_id,
            region,
            minute,
            list(self.ms_at_level),
            self.participants_seen,
            self.parts_at_min.lowest(),
            self.changes,
        )


class RegionRollups(msgspec.Struct, array_like=True, dict=True):
    """Region minutes as sums of room minutes: a value for a Faust table keyed by region.

    Keeps the latest revision of each room's minute, so a re-emitted (corrected) room minute
    replaces that room's contribution instead of adding to it, and a replayed one changes
    nothing. Every change re-emits the region minute with the next revision (sinks upsert).

    The sums of each minute are kept beside the state (:class:`MinuteTotals`, not encoded,
    rebuilt once after a decode): summing every room of a region for each room minute made a
    minute's close quadratic, ~80 s of CPU at 20,000 rooms, every minute.
    """

    region: str
    keep_minutes: int = DEFAULT_REGION_KEEP_MINUTES
    rooms: dict[int, dict[str, RoomPart]] = msgspec.field(default_factory=dict)
    """minute -> room_sid -> what the latest revision of that room's minute adds."""
    emitted: dict[int, MinuteRollup] = msgspec.field(default_factory=dict)
    max_minute: int | None = None
    dropped_late: int = 0

    @property
    def horizon_minute(self) -> int | None:
        """Oldest region minute still held; room minutes before it are dropped."""
        if self.max_minute is None:
            return None
        return self.max_minute - self.keep_minutes * MINUTE_MS

    def apply(self, room: MinuteRollup) -> list[MinuteRollup]:
        """Take a room minute; return the region minute it changed (or nothing)."""
        if room.scope != "room" or room.region != self.region:
            raise ValueError(f"{room.scope} rollup of region {room.region!r} for {self.region!r}")
        horizon = self.horizon_minute
        if horizon is not None and room.minute < horizon:
            self.dropped_late += 1
            return []
        per_room = self.rooms.setdefault(room.minute, {})
        previous = per_room.get(room.scope_id)
        part = RoomPart.of(room)
        if previous is not None and (
            part.revision < previous.revision
            or (part.revision == previous.revision and part.same_aggregate(previous))
        ):
            return []  # a replay or an older revision arriving after a newer one
        totals = self._totals(room.minute, per_room)
        if previous is not None:
            totals.remove(previous)
        per_room[room.scope_id] = part
        totals.add(part)
        total = totals.aggregate("region", self.region, self.region, room.minute)
        last = self.emitted.get(room.minute)
        out: list[MinuteRollup] = []
        if last is None or not last.same_aggregate(total):
            if last is not None:
                total = msgspec.structs.replace(total, revision=last.revision + 1)
            self.emitted[room.minute] = total
            out.append(total)
        if self.max_minute is None or room.minute > self.max_minute:
            self.max_minute = room.minute
            self._prune()
        return out

    def _totals(self, minute: int, per_room: dict[str, RoomPart]) -> MinuteTotals:
        """The minute's running sums (summed from its rooms once, after a decode)."""
        by_minute: dict[int, MinuteTotals] = beside(self, "_sums", dict)
        totals = by_minute.get(minute)
        if totals is None:
            totals = by_minute[minute] = MinuteTotals()
            for part in per_room.values():
                totals.add(part)
        return totals

    def _prune(self) -> None:
        horizon = self.horizon_minute
        if horizon is None:
            return
        sums: dict[int, MinuteTotals] = beside(self, "_sums", dict)
        for minute in [m for m in self.rooms if m < horizon]:
            del self.rooms[minute]
            self.emitted.pop(minute, None)
            sums.pop(minute, None)
