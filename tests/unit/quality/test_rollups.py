"""Per-minute rollups: hand-computed minutes, late corrections, and properties for any history.

The properties compare against a deliberately naive reference (every participant's presence
intervals intersected with every minute) so the state machine's incremental bookkeeping,
pruning and late corrections are checked against plain arithmetic.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.contracts.level import LevelEvent, MediaLevels
from pipelines.quality.rollups import (
    MINUTE_MS,
    MinuteRollup,
    RegionRollups,
    RoomRollups,
    decode_rollup,
    dump_region,
    dump_room,
    latest_of_each_minute,
    load_region,
    load_room,
    minute_of,
)

T0 = int(datetime(2025, 11, 23, 10, 0, tzinfo=UTC).timestamp() * 1000)
"""10:00:00, a minute boundary."""
S = 1000


def at(minutes: int, seconds: float = 0) -> int:
    """10:MM:SS as ms since the epoch."""
    return T0 + minutes * MINUTE_MS + int(seconds * S)


def event(
    participant: str,
    timestamp: int,
    level: int,
    *,
    room: str = "RM1",
    region: str = "us1",
    departed: bool = False,
    event_id: str | None = None,
) -> LevelEvent:
    return LevelEvent(
        schema="netquality.level.v1",
        event_id=event_id or f"{participant}:{timestamp}",
        room_sid=room,
        participant_sid=participant,
        region=region,
        timestamp=timestamp,
        level=level,
        previous_level=None,
        audio=MediaLevels(),
        video=MediaLevels(),
        departed=departed,
    )


def run(state: RoomRollups, events: list[LevelEvent]) -> list[MinuteRollup]:
    out: list[MinuteRollup] = []
    for e in events:
        out.extend(state.apply(e))
    return out


def room(sid: str = "RM1", region: str = "us1") -> RoomRollups:
    return RoomRollups(room_sid=sid, region=region)


def by_minute(rollups: list[MinuteRollup]) -> dict[int, MinuteRollup]:
    """Latest version of each minute, as an upserting sink would hold it."""
    return {r.minute: r for r in rollups}


def secs(**levels: float) -> tuple[float, ...]:
    """``secs(l5=30)`` -> seconds_at_level with 30 s at level 5."""
    return tuple(float(levels.get(f"l{i}", 0)) for i in range(6))


# -- hand-computed rooms -------------------------------------------------------------------------


def test_step_function_counts_up_to_the_minute_boundary():
    state = room()
    assert state.apply(event("PA1", at(0, 30), 5)) == []
    closed = state.apply(event("PA1", at(1, 15), 2))
    assert [r.minute for r in closed] == [at(0)]  # watermark 10:01:10 closes 10:00 only
    m0 = closed[0]
    assert m0.key == ("room", "RM1", at(0))
    assert m0.seconds_at_level == secs(l5=30)
    assert (m0.participants_seen, m0.min_level, m0.avg_level, m0.changes) == (1, 5, 5.0, 1)

    assert state.advance(at(1, 59)) == []  # 10:01 ends at 10:02, not yet
    (m1,) = state.advance(at(2))
    assert m1.minute == at(1)
    assert m1.seconds_at_level == secs(l5=15, l2=45)
    assert m1.min_level == 2
    assert m1.avg_level == pytest.approx((15 * 5 + 45 * 2) / 60)
    assert (m1.participants_seen, m1.changes, m1.revision) == (1, 1, 0)


def test_a_closed_minute_is_emitted_once():
    state = room()
    run(state, [event("PA1", at(0), 3)])
    first = state.advance(at(1))
    assert [r.minute for r in first] == [at(0)]
    assert state.advance(at(1)) == []
    assert state.advance(at(1, 30)) == []
    assert state.advance(at(0, 10)) == []  # watermarks never go back


def test_whole_minutes_without_events_get_60_seconds():
    state = room()
    run(state, [event("PA1", at(0, 0), 3)])
    out = state.advance(at(5))
    assert [r.minute for r in out] == [at(m) for m in range(5)]
    for r in out:
        assert r.seconds_at_level == secs(l3=60)
        assert (r.participants_seen, r.min_level, r.avg_level) == (1, 3, 3.0)
    assert [r.changes for r in out] == [1, 0, 0, 0, 0]


def test_departed_stops_the_count():
    state = room()
    run(state, [event("PA1", at(0), 4), event("PA1", at(0, 20), 4, departed=True)])
    out = state.advance(at(10))
    assert [r.minute for r in out] == [at(0)]  # nothing after the departure
    assert out[0].seconds_at_level == secs(l4=20)
    assert (out[0].participants_seen, out[0].changes) == (1, 2)
    assert state.is_idle  # pruned: departed, and 10:00 no longer correctable


def test_departure_at_a_minute_start_still_counts_as_a_change():
    state = room()
    run(state, [event("PA1", at(0), 4), event("PA1", at(1), 4, departed=True)])
    out = by_minute(state.advance(at(3)))
    assert out[at(0)].seconds_at_level == secs(l4=60)
    empty = out[at(1)]
    assert empty.seconds_at_level == secs()
    assert (empty.participants_seen, empty.min_level, empty.avg_level, empty.changes) == (
        0,
        None,
        None,
        1,
    )


def test_rejoin_after_departure_counts_again():
    state = room()
    run(
        state,
        [
            event("PA1", at(0, 0), 5),
            event("PA1", at(0, 10), 5, departed=True),
            event("PA1", at(0, 40), 1),
        ],
    )
    (m0,) = state.advance(at(1))
    assert m0.seconds_at_level == secs(l5=10, l1=20)
    assert (m0.participants_seen, m0.min_level, m0.changes) == (1, 1, 3)


def test_min_ignores_a_level_held_for_no_time():
    state = room()
    run(state, [event("PA1", at(0, 5), 0), event("PA1", at(0, 5), 4, event_id="PA1:b")])
    (m0,) = state.advance(at(1))
    assert m0.seconds_at_level == secs(l4=55)
    assert (m0.min_level, m0.changes) == (4, 2)


def test_many_participants_are_summed_and_seen_once_each():
    state = room()
    run(
        state,
        [
            event("PA1", at(0, 0), 5),
            event("PA2", at(0, 30), 3),
            event("PA1", at(0, 45), 4),
        ],
    )
    (m0,) = state.advance(at(1))
    assert m0.seconds_at_level == secs(l5=45, l4=15, l3=30)
    assert m0.participants_seen == 2
    assert m0.min_level == 3
    assert m0.avg_level == pytest.approx((45 * 5 + 15 * 4 + 30 * 3) / 90)
    assert m0.changes == 3


def test_replayed_event_is_ignored():
    state = room()
    e = event("PA1", at(0, 10), 2)
    run(state, [e, e, e])
    (m0,) = state.advance(at(1))
    assert (m0.changes, m0.seconds_at_level) == (1, secs(l2=50))
    assert state.duplicates == 2


def test_event_for_another_room_is_refused():
    with pytest.raises(ValueError, match="RM2"):
        room().apply(event("PA1", at(0), 5, room="RM2"))


def test_an_outside_watermark_closes_a_quiet_room():
    state = room()
    run(state, [event("PA1", at(0, 30), 5)])
    assert [r.minute for r in state.advance(at(3))] == [at(0), at(1), at(2)]


# -- late events ---------------------------------------------------------------------------------


def test_late_event_reemits_the_corrected_minute_under_the_same_key():
    state = room()
    out = run(state, [event("PA1", at(0), 5), event("PA2", at(1, 6), 4)])
    (original,) = out  # watermark 10:01:01 closed 10:00
    assert original.seconds_at_level == secs(l5=60)

    corrected_list = state.apply(event("PA1", at(0, 40), 1))  # 26 s late, 10:00 is closed
    (corrected,) = corrected_list
    assert corrected.key == original.key
    assert corrected.revision == original.revision + 1
    assert corrected.seconds_at_level == secs(l5=40, l1=20)
    assert (corrected.min_level, corrected.changes) == (1, 2)

    (m1,) = state.advance(at(2))  # the late step also holds in the open minute
    assert m1.seconds_at_level == secs(l1=60, l4=54)


def test_late_event_that_changes_nothing_visible_emits_nothing_twice():
    state = room()
    run(state, [event("PA1", at(0), 5), event("PA2", at(1, 6), 4)])
    (first,) = state.apply(event("PA3", at(0, 59), 5))
    assert first.revision == 1  # one more participant and change: a correction
    assert state.apply(event("PA3", at(0, 59), 5)) == []  # its replay: nothing


def test_late_departure_can_empty_a_closed_minute():
    state = room()
    run(state, [event("PA1", at(0, 50), 5)])
    out = by_minute(state.advance(at(2)))
    assert out[at(1)].seconds_at_level == secs(l5=60)
    corrected = by_minute(state.apply(event("PA1", at(0, 55), 5, departed=True)))
    assert corrected[at(0)].seconds_at_level == secs(l5=5)
    assert corrected[at(1)].revision == 1
    assert corrected[at(1)].participants_seen == 0  # re-emitted empty, not left standing
    assert corrected[at(1)].seconds_at_level == secs()


def test_late_event_spanning_several_closed_minutes():
    state = room()
    run(state, [event("PA1", at(0), 5)])
    state.advance(at(3))
    out = state.apply(event("PA1", at(1, 30), 0))
    assert [(r.minute, r.revision) for r in out] == [(at(1), 1), (at(2), 1)]
    assert out[1].seconds_at_level == secs(l0=60)


def test_too_late_event_is_dropped_and_counted():
    state = room()
    run(state, [event("PA1", at(0), 5)])
    state.advance(at(10))
    assert state.apply(event("PA1", at(5), 0)) == []
    assert state.dropped_late == 1


def test_memory_stays_bounded_over_a_long_call():
    state = room()
    for i in range(600):  # an hour, a level change every 6 s
        state.apply(event("PA1", T0 + i * 6 * S, i % 6))
        assert len(state.closed) <= state.keep_closed_minutes
        assert len(state.timelines["PA1"]) <= (state.keep_closed_minutes + 2) * 10 + 1


# -- regions -------------------------------------------------------------------------------------


def test_two_rooms_of_a_region_add_up():
    a, b = room("RMA"), room("RMB")
    run(a, [event("PA1", at(0), 5, room="RMA")])
    run(b, [event("PA2", at(0, 30), 1, room="RMB"), event("PA3", at(0), 3, room="RMB")])
    region = RegionRollups(region="us1")
    out = []
    for r in a.advance(at(1)) + b.advance(at(1)):
        out.extend(region.apply(r))
    total = out[-1]
    assert total.key == ("region", "us1", at(0))
    assert total.seconds_at_level == secs(l5=60, l3=60, l1=30)
    assert (total.participants_seen, total.min_level, total.changes) == (3, 1, 3)
    assert total.avg_level == pytest.approx((300 + 180 + 30) / 150)
    assert [r.revision for r in out] == [0, 1]  # updated when the second room arrived


def test_region_replaces_a_corrected_room_minute_instead_of_adding():
    a, b = room("RMA"), room("RMB")
    region = RegionRollups(region="us1")
    first = run(a, [event("PA1", at(0), 5, room="RMA"), event("PA2", at(1, 6), 4, room="RMA")])
    first += b.advance(at(1)) + run(b, [event("PB1", at(0), 2, room="RMB")])
    first += b.advance(at(1, 1))
    for r in first:
        region.apply(r)
    assert region.emitted[at(0)].seconds_at_level == secs(l5=60, l2=60)

    (corrected_room,) = a.apply(event("PA1", at(0, 40), 1, room="RMA"))
    (corrected_region,) = region.apply(corrected_room)
    assert corrected_region.key == ("region", "us1", at(0))
    assert corrected_region.seconds_at_level == secs(l5=40, l2=60, l1=20)
    assert corrected_region.participants_seen == 2
    assert corrected_region.min_level == 1
    assert corrected_region.changes == 3

    assert region.apply(corrected_room) == []  # replay
    assert region.apply(first[0]) == []  # older revision arriving late
    assert region.emitted[at(0)] == corrected_region


def test_a_batch_publishes_each_region_minute_once_its_last_version():
    rooms = [room(f"RM{i}") for i in range(5)]
    region = RegionRollups(region="us1")
    out: list[MinuteRollup] = []
    for i, state in enumerate(rooms):
        for r in run(state, [event(f"PA{i}", at(0), 5 - i % 3, room=f"RM{i}")]):
            out.extend(region.apply(r))
        for r in state.advance(at(2, 6)):
            out.extend(region.apply(r))
    assert len(out) > 2  # every room minute re-emitted its region minute
    latest = latest_of_each_minute(out)
    assert [r.key for r in latest] == [("region", "us1", at(0)), ("region", "us1", at(1))]
    assert latest == [region.emitted[at(0)], region.emitted[at(1)]]  # the final sums


@given(st.lists(st.tuples(st.sampled_from(["us1", "eu1"]), st.integers(0, 3)), max_size=30))
def test_latest_of_each_minute_keeps_the_last_per_key_in_order(keys):
    base = _a_region_minute()
    minutes = [
        msgspec.structs.replace(base, scope_id=r, region=r, minute=at(m), revision=n)
        for n, (r, m) in enumerate(keys)
    ]
    last_index = {(r.scope_id, r.minute): r.revision for r in minutes}
    assert [r.revision for r in latest_of_each_minute(minutes)] == sorted(last_index.values())


def _a_region_minute() -> MinuteRollup:
    source = room("RMX")
    closed = run(source, [event("PX", at(0), 3, room="RMX")]) + source.advance(at(1, 6))
    (total,) = RegionRollups(region="us1").apply(closed[0])
    return total


def test_region_refuses_other_regions_and_region_rollups():
    region = RegionRollups(region="us1")
    state = room(region="eu1")
    run(state, [event("PA1", at(0), 5, region="eu1")])
    (r,) = state.advance(at(1))
    with pytest.raises(ValueError):
        region.apply(r)


def test_region_drops_room_minutes_older_than_it_keeps():
    region = RegionRollups(region="us1", keep_minutes=2)
    state = room()
    run(state, [event("PA1", at(0), 5)])
    for r in state.advance(at(5)):
        region.apply(r)
    assert sorted(region.rooms) == [at(2), at(3), at(4)]
    old = msgspec.structs.replace(r, minute=at(1), revision=5)
    assert region.apply(old) == []
    assert region.dropped_late == 1


# -- encoding ------------------------------------------------------------------------------------


def test_rollup_message_is_json_friendly_and_round_trips():
    state = room()
    run(state, [event("PA1", at(0, 30), 5)])
    (r,) = state.advance(at(1))
    d = r.to_dict()
    assert d["schema"] == "netquality.rollups.v1"
    assert d["scope"] == "room"
    assert d["scopeId"] == "RM1"
    assert d["minute"] == at(0)
    assert d["secondsAtLevel"] == [0, 0, 0, 0, 0, 30]
    assert d["participantsSeen"] == 1
    assert d["minLevel"] == 5
    assert d["avgLevel"] == 5.0
    assert d["changes"] == 1
    assert d["revision"] == 0
    assert decode_rollup(r.encode()) == r


# -- properties ----------------------------------------------------------------------------------

SPAN = 3 * MINUTE_MS
END = T0 + SPAN + 2 * MINUTE_MS
"""Watermark the property runs close to; minutes before ``minute_of(END)`` are compared."""

event_tuples = st.tuples(
    st.sampled_from(["PA1", "PA2", "PA3", "PA4"]),
    st.integers(0, SPAN - 1),
    st.integers(0, 5),
    st.integers(0, 5).map(lambda x: x == 0),  # departed one time in six
    # delivery delay: on time, or late by up to a minute (never beyond what is correctable)
    st.sampled_from([0, 0, 1_000, 20_000, 45_000, 60_000]) | st.integers(0, 60_000),
)
raw_events = st.one_of(
    st.lists(event_tuples, max_size=12, unique_by=lambda t: (t[0], t[1])),
    # dense histories: about one in four needs a late correction
    st.lists(event_tuples, min_size=12, max_size=60, unique_by=lambda t: (t[0], t[1])),
)


def make_events(raw: list[tuple[str, int, int, bool, int]], rooms: int = 1) -> list[LevelEvent]:
    """Events in delivery order (event time + delay); participant PAn is in room n % rooms."""
    delivered = sorted(raw, key=lambda t: (T0 + t[1] + t[4], t[1]))
    return [
        event(p, T0 + off, lvl, departed=dep, room=f"RM{int(p[2:]) % rooms}")
        for p, off, lvl, dep, _ in delivered
    ]


def reference(events: list[LevelEvent], end: int) -> dict[int, tuple]:
    """Naive minutes: (ms per level, participants seen, min level, changes) per minute."""
    minutes: dict[int, tuple[list[int], set[str], list[int], int]] = {}
    by_participant: dict[str, list[LevelEvent]] = {}
    for e in events:
        by_participant.setdefault(e.participant_sid, []).append(e)
    for m in range(T0, end, MINUTE_MS):
        minutes[m] = ([0] * 6, set(), [], 0)
    for e in events:
        ms, seen, mins, changes = minutes[minute_of(e.timestamp)]
        minutes[minute_of(e.timestamp)] = (ms, seen, mins, changes + 1)
    for sid, steps in by_participant.items():
        steps.sort(key=lambda e: e.timestamp)
        for i, step in enumerate(steps):
            if step.departed:
                continue
            until = steps[i + 1].timestamp if i + 1 < len(steps) else end
            for m in minutes:
                overlap = min(until, m + MINUTE_MS) - max(step.timestamp, m)
                if overlap > 0:
                    minutes[m][0][step.level] += overlap
                    minutes[m][1].add(sid)
                    minutes[m][2].append(step.level)
    return {
        m: (tuple(x / 1000 for x in ms), len(seen), min(mins) if mins else None, changes)
        for m, (ms, seen, mins, changes) in minutes.items()
    }


def observed(r: MinuteRollup | None) -> tuple:
    if r is None:
        return (tuple([0.0] * 6), 0, None, 0)
    return (r.seconds_at_level, r.participants_seen, r.min_level, r.changes)


def check_against_reference(latest: dict[int, MinuteRollup], events: list[LevelEvent]) -> None:
    expected = reference(events, minute_of(END))
    assert set(latest) <= set(expected)
    for m, want in expected.items():
        got = latest.get(m)
        assert observed(got)[0] == pytest.approx(want[0]), m
        assert observed(got)[1:] == want[1:], m
        if got is not None:
            assert sum(got.seconds_at_level) <= 60 * got.participants_seen + 1e-9
            if got.participants_seen:
                weighted = sum(lvl * s for lvl, s in enumerate(got.seconds_at_level))
                assert got.avg_level == pytest.approx(weighted / got.seconds)
    assert sum(r.changes for r in latest.values()) == len(events)


@settings(max_examples=150, deadline=None)
@given(raw_events)
def test_any_history_matches_the_naive_reference(raw):
    events = make_events(raw)
    state = room("RM0")
    out = run(state, events) + state.advance(END)
    assert state.dropped_late == 0
    check_against_reference(by_minute(out), events)


@settings(max_examples=100, deadline=None)
@given(raw_events)
def test_in_order_history_emits_each_minute_once(raw):
    events = make_events([(p, off, lvl, dep, 0) for p, off, lvl, dep, _ in raw])
    state = room("RM0")
    out = run(state, events) + state.advance(END)
    keys = [r.key for r in out]
    assert len(keys) == len(set(keys))
    assert all(r.revision == 0 for r in out)


@settings(max_examples=100, deadline=None)
@given(raw_events, st.integers(0, 40), st.integers(0, 40))
def test_state_round_trips_and_replays_change_nothing(raw, cut, replay_from):
    events = make_events(raw)
    straight = room("RM0")
    expected = run(straight, events) + straight.advance(END)

    resumed = room("RM0")
    cut = min(cut, len(events))
    out = run(resumed, events[:cut])
    resumed = load_room(dump_room(resumed))
    out += run(resumed, events[min(replay_from, cut) : cut])  # redelivered after a restart
    out += run(resumed, events[cut:]) + resumed.advance(END)
    assert by_minute(out) == by_minute(expected)
    assert load_room(dump_room(resumed)) == resumed


@settings(max_examples=100, deadline=None)
@given(raw_events)
def test_region_is_the_sum_of_its_rooms(raw):
    events = make_events(raw, rooms=2)
    rooms = {sid: room(sid) for sid in ("RM0", "RM1")}
    region = RegionRollups(region="us1")
    room_out: list[MinuteRollup] = []
    region_out: list[MinuteRollup] = []
    for e in events:
        for r in rooms[e.room_sid].apply(e):
            room_out.append(r)
            region_out.extend(region.apply(r))
        region = load_region(dump_region(region))
    for state in rooms.values():
        for r in state.advance(END):
            room_out.append(r)
            region_out.extend(region.apply(r))
    latest = {r.minute: r for r in region_out}
    assert all(r.key[:2] == ("region", "us1") for r in latest.values())
    # participants of both rooms together: the region behaves like one big room
    check_against_reference(latest, events)
    keys = [(r.minute, r.revision) for r in region_out]
    assert len(keys) == len(set(keys))


# -- the open minutes at a graceful stop ----------------------------------------------------------


def test_open_minutes_count_presence_up_to_the_stop_and_change_nothing():
    """A 94 s call stopped at 10:01:34: the closed minute plus 34 s of the open one."""
    state = room()
    run(state, [event("PA1", at(0), 5), event("PA2", at(0, 10), 4)])
    closed = state.advance(at(1, 29))
    assert [r.minute for r in closed] == [at(0)]
    before = msgspec.msgpack.encode(state)
    (partial,) = state.open_minutes(at(1, 34))
    assert partial.key == ("room", "RM1", at(1))
    assert partial.seconds_at_level == secs(l5=34, l4=34)
    assert (partial.participants_seen, partial.min_level, partial.revision) == (2, 4, 0)
    assert sum(closed[0].seconds_at_level) + partial.seconds == 94 + 84
    assert msgspec.msgpack.encode(state) == before  # a restart closes the minute as usual
    (full,) = state.advance(at(2))
    assert full.key == partial.key and full.seconds == 120  # and replaces the partial row


def test_open_minutes_of_a_room_never_closed_and_of_an_empty_one():
    state = room()
    run(state, [event("PA1", at(0, 20), 3), event("PA1", at(0, 50), 2)])
    (only,) = state.open_minutes(at(0, 55))
    assert only.seconds_at_level == secs(l3=30, l2=5)
    assert only.changes == 2
    gone = room()
    run(gone, [event("PA1", at(0), 3), event("PA1", at(0, 5), 0, departed=True)])
    gone.advance(at(3))
    assert gone.open_minutes(at(3, 30)) == []
