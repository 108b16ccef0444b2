"""A region's minute sums, kept as room minutes come and are corrected, equal summing every
room of the minute again (the old per-room-minute sum, quadratic in a region's rooms), for any
order, corrections, replays and late minutes, with the state decoded at any point."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.quality.rollups import (
    MINUTE_MS,
    MinuteRollup,
    RegionRollups,
    _aggregate,
    dump_region,
    load_region,
)

T0 = 1_763_900_040_000 - 1_763_900_040_000 % MINUTE_MS


def summed_again(region: RegionRollups, minute: int) -> MinuteRollup:
    """Every room of the minute summed from scratch, in whole milliseconds."""
    parts = list(region.rooms[minute].values())
    ms = [sum(round(p.seconds_at_level[lv] * 1000) for p in parts) for lv in range(6)]
    mins = [p.min_level for p in parts if p.min_level is not None]
    return _aggregate(
        "region",
        region.region,
        region.region,
        minute,
        ms,
        sum(p.participants_seen for p in parts),
        min(mins) if mins else None,
        sum(p.changes for p in parts),
    )


@st.composite
def room_minutes(draw: st.DrawFn) -> list[MinuteRollup]:
    out = []
    revisions: dict[tuple[str, int], int] = {}
    for _ in range(draw(st.integers(1, 40))):
        room = f"RM{draw(st.integers(0, 4))}"
        minute = T0 + MINUTE_MS * draw(st.integers(0, 4))
        ms = [draw(st.integers(0, 20_000)) for _ in range(6)]
        seen = draw(st.integers(0, 5))
        revision = revisions.get((room, minute), -1) + draw(st.sampled_from([1, 1, 1, 0, -1]))
        revisions[(room, minute)] = max(revision, revisions.get((room, minute), -1))
        low = draw(st.one_of(st.none(), st.integers(0, 5)))
        out.append(
            _aggregate(
                "room",
                room,
                "us1",
                minute,
                ms,
                seen,
                low,
                draw(st.integers(0, 9)),
                max(revision, 0),
            )
        )
    return out


@settings(max_examples=300, deadline=None)
@given(room_minutes(), st.integers(0, 40))
def test_running_sums_equal_summing_every_room_again(minutes, reload_at: int) -> None:
    region = RegionRollups(region="us1", keep_minutes=3)
    for i, room in enumerate(minutes):
        if i == reload_at:  # a restart: the sums are rebuilt from the decoded rooms
            region = load_region(dump_region(region))
        for out in region.apply(room):
            again = summed_again(region, out.minute)
            assert msgspec.structs.replace(out, revision=0) == again
        for minute in region.emitted:
            assert region.emitted[minute].same_aggregate(summed_again(region, minute))
