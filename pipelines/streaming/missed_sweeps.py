"""Which sweeps a room kept only as bytes has missed, without a record per room.

A room stage's timer advances every room to its partition's stream time; a room with
nothing due changes only in memory (its clock or watermark moves) and is not written. When
only recently written rooms stay decoded, such a room's decoded copy may be dropped, so
when it is decoded again it must catch up with the sweeps it saw: the latest stream time
among the sweeps of its partition since the room was created (a stream time can go back:
:class:`~pipelines.streaming.clock.StreamClock` follows the wall clock only while idle).

Kept per partition: the highest sweep time, the rooms created since that sweep with the
sweep count at their creation, and the later sweeps' times as a stack of suffix maxima.
Both are cleared by the next sweep at a new high, so they hold only what happened since.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any, TypeVar

S = TypeVar("S")


class _Partition:
    __slots__ = ("highest", "later", "sweeps", "young")

    def __init__(self) -> None:
        self.highest = 0
        self.sweeps = 0
        self.young: dict[str, int] = {}
        """Rooms created after the sweep at ``highest``: the sweep count at creation."""
        self.later: list[tuple[int, int]] = []
        """(sweep count, time) of sweeps after the highest: counts rise, times fall."""


class MissedSweeps:
    """Per partition, the sweep times a room has seen since it was created."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}

    def swept(self, partition: int, now: int) -> None:
        """Every room of ``partition`` was advanced (or judged idle) at stream time ``now``."""
        part = self._partitions.get(partition)
        if part is None:
            part = self._partitions[partition] = _Partition()
        part.sweeps += 1
        if now >= part.highest:
            part.highest = now
            part.young.clear()
            part.later.clear()
            return
        later = part.later
        while later and later[-1][1] <= now:
            later.pop()
        later.append((part.sweeps, now))

    def created(self, partition: int, key: str) -> None:
        """Room ``key`` was created (it saw no sweep before this)."""
        part = self._partitions.get(partition)
        if part is None:
            part = self._partitions[partition] = _Partition()
        part.young[key] = part.sweeps

    def seen(self, partition: int, key: str) -> int:
        """The latest stream time among the sweeps room ``key`` saw; 0 if none."""
        part = self._partitions.get(partition)
        if part is None:
            return 0
        created_at = part.young.get(key)
        if created_at is None:
            return part.highest
        later = part.later
        i = bisect_right(later, created_at, key=lambda entry: entry[0])
        return later[i][1] if i < len(later) else 0

    def clear(self) -> None:
        """Forget every sweep (decoded copies were dropped: the table is the truth again)."""
        self._partitions.clear()


def catch_up_on_decode(states: Any, catch_up: Callable[[S], None]) -> None:
    """Make ``states`` (a :class:`~pipelines.streaming.buffered_states.BufferedStates`) pass every
    state it decodes from its table bytes through ``catch_up`` before handing it out."""
    load: Callable[[bytes], S] = states.load

    def loaded(data: bytes) -> S:
        state = load(data)
        catch_up(state)
        return state

    states.load = loaded
