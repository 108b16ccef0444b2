"""Which stream time a room stage hands its keys: its partition's, not one clock for all.

A worker drains a backlog partition by partition, at different speeds. One partition can be
minutes ahead of another, and a room lives in one partition. Swept with the newest stream
time of *all* partitions, a room in the partition behind is moved past events of its own
that are still unread: its minutes close without them (they come later as corrections, or
are dropped once past the correction window) and its alerts fire on a condition that those
events would have ended. Swept with its own partition's clock it ends exactly as an even
drain does. (docs/architecture.md, "The room stage"; the streaming floor's version is
tests/unit/streaming/test_room_stage.py.)
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any, Literal

import pytest

from pipelines.quality.alerting import AlertRules, RoomSummary
from pipelines.quality.alerting.logic import RoomAlertsKind
from pipelines.quality.rollups.logic import RoomRollupsKind
from pipelines.quality.room.level import RoomLevel
from pipelines.quality.room.logic import LogicKind

T0 = int(datetime(2026, 12, 7, 10, 0, tzinfo=UTC).timestamp() * 1000)
S = 1000
AHEAD, BEHIND = 0, 1
"""The two partitions: the rooms ``RM_ahead`` and ``RM_behind`` live one in each."""
BATCH_S = 10
"""Each read takes 10 s of one partition's records."""

Policy = Literal["partition", "global"]


def history(room: str, levels: list[int]) -> list[RoomLevel]:
    """Two participants of ``room`` changing level together every 10 s (``levels``)."""
    return [
        RoomLevel(f"{room}-{p}-{i}", room, f"{room}-{p}", "eu", T0 + i * 10 * S, level)
        for i, level in enumerate(levels)
        for p in ("p1", "p2")
    ]


AHEAD_LEVELS = [4, 5, 3, 4, 5, 4] * 6
"""Six minutes of a healthy room."""
BEHIND_LEVELS = [1, 4, 5, 4, 3, 5] * 6
"""Six minutes of a room whose participants are bad for its first 10 s of every minute:
never for the 15 s the room rule needs, nor the 30 s of a participant stuck."""


def batches(records: list[RoomLevel]) -> list[list[RoomLevel]]:
    """The partition's records as its reads take them, :data:`BATCH_S` each."""
    by_read: dict[int, list[RoomLevel]] = defaultdict(list)
    for record in records:
        by_read[(record.timestamp - T0) // (BATCH_S * S)].append(record)
    return [by_read[i] for i in sorted(by_read)]


def even_reads() -> list[tuple[int, list[RoomLevel]]]:
    """Both partitions read in step."""
    ahead, behind = (
        batches(history("RM_ahead", AHEAD_LEVELS)),
        batches(history("RM_behind", BEHIND_LEVELS)),
    )
    return [read for pair in zip(ahead, behind, strict=True) for read in
            ((AHEAD, pair[0]), (BEHIND, pair[1]))]  # fmt: skip


def uneven_reads() -> list[tuple[int, list[RoomLevel]]]:
    """An uneven backlog: the behind partition's first read, then the whole of the other
    (its stream time runs six minutes ahead), then the rest of the behind one."""
    ahead, behind = (
        batches(history("RM_ahead", AHEAD_LEVELS)),
        batches(history("RM_behind", BEHIND_LEVELS)),
    )
    return [(BEHIND, behind[0])] + [(AHEAD, b) for b in ahead] + [(BEHIND, b) for b in behind[1:]]


def drain(
    kind: LogicKind, reads: list[tuple[int, list[RoomLevel]]], policy: Policy
) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Each read's records through their rooms, then a sweep of every room, as a room
    stage does; ``policy`` says which stream time a room is handed: its partition's (the
    newest stream time read there) or the newest read in any partition."""
    clocks: dict[int, int] = {}
    partition_of: dict[str, int] = {}
    logics: dict[str, Any] = {}
    out: dict[str, list[Any]] = defaultdict(list)

    def stream_time(partition: int) -> int:
        return clocks[partition] if policy == "partition" else max(clocks.values())

    for partition, records in reads:
        clocks[partition] = max(clocks.get(partition, 0), *(r.timestamp for r in records))
        for record in records:
            key = kind.key_of(record)
            partition_of[key] = partition
            logic = logics.get(key) or kind.start(record, stream_time(partition))
            out[key].extend(logic.apply([record], stream_time(partition)))
            logics[key] = logic
        for key in sorted(logics):
            out[key].extend(logics[key].advance(stream_time(partition_of[key])))
    return out, logics


def alerts_of(out: list[Any]) -> list[tuple[str, str, int]]:
    return [(a.kind, a.status, a.timestamp) for a in out if not isinstance(a, RoomSummary)]


@pytest.mark.parametrize("policy", ["partition", "global"])
def test_rollups_of_an_uneven_backlog_close_each_rooms_minutes_on_its_partitions_clock(
    policy: Policy,
) -> None:
    even, _ = drain(RoomRollupsKind(), even_reads(), "partition")
    uneven, logics = drain(RoomRollupsKind(), uneven_reads(), policy)
    assert even["RM_behind"] and all(m.revision == 0 for m in even["RM_behind"])
    assert uneven["RM_ahead"] == even["RM_ahead"]
    behind = logics["RM_behind"].state
    if policy == "partition":
        assert uneven["RM_behind"] == even["RM_behind"]
        assert behind.dropped_late == 0
    else:  # minutes 0-4 closed on the first 10 s; what came later was too late to fix them
        assert uneven["RM_behind"] != even["RM_behind"]
        assert behind.dropped_late > 0
        assert any(m.revision > 0 for m in uneven["RM_behind"])


@pytest.mark.parametrize("policy", ["partition", "global"])
def test_alerts_of_an_uneven_backlog_fire_on_each_rooms_partition_clock(
    policy: Policy,
) -> None:
    kind = RoomAlertsKind(AlertRules())
    even, _ = drain(kind, even_reads(), "partition")
    uneven, _ = drain(kind, uneven_reads(), policy)
    assert alerts_of(even["RM_behind"]) == [], "10 s bad in each minute is never sustained"
    assert uneven["RM_ahead"] == even["RM_ahead"]
    if policy == "partition":
        assert uneven["RM_behind"] == even["RM_behind"]
    else:  # the room was swept 6 minutes on while only its first 10 s were read
        assert ("room_degraded", "opened", T0 + 15 * S) in alerts_of(uneven["RM_behind"])
