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


def summed_again(latest: dict[tuple[int, str], MinuteRollup], minute: int) -> MinuteRollup:
    """Every room's latest minute summed from scratch, in whole milliseconds."""
    parts = [r for (m, _), r in latest.items() if m == minute]
    ms = [sum(round(p.seconds_at_level[lv] * 1000) for p in parts) for lv in range(6)]
    mins = [p.min_level for p in parts if p.min_level is not None]
    return _aggregate(
        "region", "us1", "us1", minute, ms, sum(p.participants_seen for p in parts),
        min(mins) if mins else None, sum(p.changes for p in parts),
    )  # fmt: skip


def accept(latest: dict[tuple[int, str], MinuteRollup], room: MinuteRollup) -> None:
    """The region's rule: a newer revision, or the same one with other figures, replaces."""
    key = (room.minute, room.scope_id)
    previous = latest.get(key)
    if (
        previous is None
        or room.revision > previous.revision
        or (room.revision == previous.revision and not room.same_aggregate(previous))
    ):
        latest[key] = room


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
@given(room_minutes(), st.integers(0, 40), st.booleans())
def test_running_sums_equal_summing_every_room_again(minutes, reload_at: int, old: bool) -> None:
    region = RegionRollups(region="us1", keep_minutes=3)
    latest: dict[tuple[int, str], MinuteRollup] = {}
    for i, room in enumerate(minutes):
        if i == reload_at:  # a restart: the sums are rebuilt from the decoded rooms
            region = load_region(written_before_room_parts(latest, region) if old else
                                 dump_region(region))  # fmt: skip
        horizon = region.horizon_minute
        if horizon is None or room.minute >= horizon:
            accept(latest, room)
        for out in region.apply(room):
            assert msgspec.structs.replace(out, revision=0) == summed_again(latest, out.minute)
        latest = {k: v for k, v in latest.items() if k[0] in region.rooms}  # pruned minutes
        for minute, emitted in region.emitted.items():
            assert emitted.same_aggregate(summed_again(latest, minute))


def written_before_room_parts(
    latest: dict[tuple[int, str], MinuteRollup], region: RegionRollups
) -> bytes:
    """The same state as an older release encoded it: whole room rollups per room minute."""
    rooms: dict[int, dict[str, MinuteRollup]] = {m: {} for m in region.rooms}
    for (minute, sid), room in latest.items():
        rooms[minute][sid] = room
    return msgspec.msgpack.encode(
        [region.region, region.keep_minutes, rooms, region.emitted, region.max_minute,
         region.dropped_late]
    )  # fmt: skip
