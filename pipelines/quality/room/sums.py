"""Running sums a region keeps beside its state (pure).

A region (of rollups or of alerts) holds the latest contribution of each of its rooms, and
thousands of rooms change one at a time, so both keep sums that are updated by the change
(remove the room's previous part, add its new one) instead of summing every room again:
that made a region-wide change quadratic (minutes of CPU at 20,000 rooms). The sums are not
encoded: :func:`beside` builds them once after a state is decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class LevelTally:
    """How many parts have each level (levels are 0-5), so the lowest is known in O(1)
    while parts come, go and are replaced."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    def add(self, level: int, sign: int = 1) -> None:
        count = self.counts.get(level, 0) + sign
        if count:
            self.counts[level] = count
        else:
            del self.counts[level]

    def lowest(self) -> int | None:
        return min(self.counts, default=None)


def beside(state: Any, name: str, build: Callable[[], T]) -> T:
    """The value kept beside ``state`` as attribute ``name`` (a Struct with ``dict=True``),
    built by ``build`` on first use (after a decode, or for a new state)."""
    value: T | None = getattr(state, name, None)
    if value is None:
        value = build()
        setattr(state, name, value)
    return value
