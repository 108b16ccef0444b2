"""Per-minute room and region rollups through the worker and the sink, computed by hand.

The level events go onto the room stage's input topic, where the levels agent routes its own.
"""

from __future__ import annotations

import pytest

from pipelines.contracts import LevelEvent, MediaLevels
from pipelines.contracts.level import LEVEL_SCHEMA
from pipelines.streaming.rollups import levels_by_room_topic

M0 = 1_763_899_980_000  # a minute boundary (ms)
S = 1000


def event(pid: str, room: str, region: str, at_s: int, level: int, seq: int,
          previous: int | None, departed: bool = False) -> LevelEvent:  # fmt: skip
    return LevelEvent(
        schema=LEVEL_SCHEMA,  # type: ignore[arg-type]
        event_id=f"{pid}:{seq}",
        room_sid=room,
        participant_sid=pid,
        region=region,
        timestamp=M0 + at_s * S,
        level=level,
        previous_level=previous,
        audio=MediaLevels(),
        video=MediaLevels(),
        departed=departed,
    )


EVENTS = [
    event("B", "RA", "us1", 0, 4, 1, None),
    event("C", "RB", "us1", 0, 3, 1, None),
    event("A", "RA", "us1", 30, 5, 1, None),
    event("C", "RB", "us1", 60, 0, 2, 3, departed=True),  # leaves exactly at a minute start
    event("A", "RA", "us1", 75, 2, 2, 5),
    event("B", "RA", "us1", 120, 0, 2, 4, departed=True),
    event("A", "RA", "us1", 150, 0, 3, 2, departed=True),
    event("D", "RZ", "zz", 400, 5, 1, None),  # elsewhere, later: event time moves on
]

# (seconds at level 0..5, participants seen, min level, avg level, changes), worked by hand.
ROOM_RA = {
    0: ((0, 0, 0, 0, 60, 30), 2, 4, (4 * 60 + 5 * 30) / 90, 2),
    1: ((0, 0, 45, 0, 60, 15), 2, 2, (2 * 45 + 4 * 60 + 5 * 15) / 120, 1),
    2: ((0, 0, 30, 0, 0, 0), 1, 2, 2.0, 2),
}
ROOM_RB = {
    0: ((0, 0, 0, 60, 0, 0), 1, 3, 3.0, 1),
    1: ((0, 0, 0, 0, 0, 0), 0, None, None, 1),
}
REGION_US1 = {
    0: ((0, 0, 0, 60, 60, 30), 3, 3, (3 * 60 + 4 * 60 + 5 * 30) / 150, 3),
    1: ((0, 0, 45, 0, 60, 15), 2, 2, (2 * 45 + 4 * 60 + 5 * 15) / 120, 2),
    2: ((0, 0, 30, 0, 0, 0), 1, 2, 2.0, 2),
}

MEASURES = (
    "seconds_at_level_0, seconds_at_level_1, seconds_at_level_2, seconds_at_level_3,"
    " seconds_at_level_4, seconds_at_level_5, participants_seen, min_level, avg_level, changes"
)


def rows(url: str, table: str, key: str, value: str, query) -> dict[int, tuple]:
    out = {}
    for r in query(
        url,
        f"SELECT extract(epoch FROM minute)::bigint * 1000, {MEASURES} FROM {table}"
        f" WHERE {key} = '{value}' ORDER BY minute",
    ):
        minute, *m = r
        out[(minute - M0) // 60_000] = (tuple(m[:6]), m[6], m[7], m[8], m[9])
    return out


def same(got: dict[int, tuple], want: dict[int, tuple]) -> bool:
    if got.keys() != want.keys():
        return False
    for minute, (seconds, seen, low, avg, changes) in want.items():
        g_seconds, g_seen, g_low, g_avg, g_changes = got[minute]
        if tuple(g_seconds) != pytest.approx(seconds) or (g_seen, g_low, g_changes) != (
            seen, low, changes,
        ):  # fmt: skip
            return False
        if (avg is None) != (g_avg is None) or (avg is not None and g_avg != pytest.approx(avg)):
            return False
    return True


def test_rollups_count_time_at_each_level_up_to_minute_boundaries(
    sink_settings, kafka_io, start_worker, sinks, db_query, wait_until
):
    kafka_io.produce_to_room_stage(sink_settings, levels_by_room_topic(sink_settings), EVENTS)
    start_worker(sink_settings)
    sinks(sink_settings)
    url = sink_settings.database_url

    def done() -> bool:
        return (
            same(rows(url, "room_rollups", "room_sid", "RA", db_query), ROOM_RA)
            and same(rows(url, "room_rollups", "room_sid", "RB", db_query), ROOM_RB)
            and same(rows(url, "region_rollups", "region", "us1", db_query), REGION_US1)
        )

    try:
        wait_until(done, timeout=120, what="hand-computed rollups")
    finally:
        got = {
            "RA": rows(url, "room_rollups", "room_sid", "RA", db_query),
            "RB": rows(url, "room_rollups", "room_sid", "RB", db_query),
            "us1": rows(url, "region_rollups", "region", "us1", db_query),
        }
    assert same(got["RA"], ROOM_RA), got
    assert same(got["RB"], ROOM_RB), got
    assert same(got["us1"], REGION_US1), got
