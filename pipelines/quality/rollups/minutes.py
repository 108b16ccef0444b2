"""A minute's aggregate of one scope (a room or a region): the ``netquality.rollups.v1``
message, and how it is built from milliseconds per level (pure)."""

from __future__ import annotations

from typing import Any, Literal, cast

import msgspec

ROLLUPS_SCHEMA = "netquality.rollups.v1"
MINUTE_MS = 60_000
LEVELS = 6

Scope = Literal["room", "region"]
SecondsAtLevel = tuple[float, float, float, float, float, float]


def minute_of(timestamp_ms: int) -> int:
    """Start (ms since the epoch) of the minute containing ``timestamp_ms``."""
    return timestamp_ms - timestamp_ms % MINUTE_MS


class MinuteRollup(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """One scope's aggregate over one minute: a ``netquality.rollups.v1`` message.

    ``(scope, scope_id, minute)`` is the upsert key; ``revision`` grows with each correction so
    a sink may also refuse to let an older revision overwrite a newer one. ``min_level`` and
    ``avg_level`` are ``None`` when nobody was present (a minute that only holds a departure at
    its very start, or a correction that removed all presence).
    """

    scope: Scope
    scope_id: str
    region: str
    minute: int
    """Start of the minute, ms since the epoch."""
    seconds_at_level: SecondsAtLevel
    """Participant-seconds spent at level 0..5 in the minute."""
    participants_seen: int
    min_level: int | None
    avg_level: float | None
    """Time-weighted: sum(level x seconds) / sum(seconds)."""
    changes: int
    """Level events (first events and departures included) timestamped in the minute."""
    revision: int = 0
    schema: Literal["netquality.rollups.v1"] = ROLLUPS_SCHEMA

    @property
    def key(self) -> tuple[str, str, int]:
        """Upsert identity: a re-emitted minute has the same key and replaces the earlier one."""
        return (self.scope, self.scope_id, self.minute)

    @property
    def seconds(self) -> float:
        """Total participant-seconds in the minute."""
        return sum(self.seconds_at_level)

    def same_aggregate(self, other: MinuteRollup) -> bool:
        """Equal in everything but ``revision``: a recomputation that changed nothing."""
        return msgspec.structs.replace(other, revision=self.revision) == self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready camelCase dict (lists, not tuples) for the ``netquality.rollups.v1`` topic."""
        data = msgspec.to_builtins(self)
        data["secondsAtLevel"] = list(self.seconds_at_level)
        return data

    def encode(self) -> bytes:
        """JSON bytes for the rollups topic (key it by :attr:`scope_id`)."""
        return msgspec.json.encode(self)


def decode_rollup(data: bytes | str) -> MinuteRollup:
    """Inverse of :meth:`MinuteRollup.encode` (what a sink consuming the topic calls)."""
    return msgspec.json.decode(data, type=MinuteRollup)


def _aggregate(
    scope: Scope,
    scope_id: str,
    region: str,
    minute: int,
    ms_at_level: list[int] | list[float],
    participants_seen: int,
    min_level: int | None,
    changes: int,
    revision: int = 0,
) -> MinuteRollup:
    """Build a rollup from milliseconds per level (seconds and the average derive from them)."""
    total = sum(ms_at_level)
    avg = sum(level * ms for level, ms in enumerate(ms_at_level)) / total if total else None
    seconds = cast(SecondsAtLevel, tuple(round(ms / 1000, 3) for ms in ms_at_level))
    return MinuteRollup(
        scope=scope,
        scope_id=scope_id,
        region=region,
        minute=minute,
        seconds_at_level=seconds,
        participants_seen=participants_seen,
        min_level=min_level if total else None,
        avg_level=avg,
        changes=changes,
        revision=revision,
    )


def latest_of_each_minute(minutes: list[MinuteRollup]) -> list[MinuteRollup]:
    """The last version of each scope's minute, in the order of those last versions.

    A region minute changes with every room minute that arrives (a minute closing in 20,000
    rooms made 20,000 region revisions); the sinks keep the last write of a minute, so a batch
    need publish only its last one. What remains stays in order per key.
    """
    last: dict[tuple[str, str, int], MinuteRollup] = {}
    for minute in minutes:
        key = (minute.scope, minute.scope_id, minute.minute)
        last.pop(key, None)
        last[key] = minute
    return list(last.values())
