"""Event time with bounds: the verdict on one event, and what wrong clocks can do to the rooms.

The property tests drive the room stages' pure cores the way the stages do (each record moves
a :class:`StreamClock` by its stream time, :func:`admit` judges it, the timer advances every
room to the clock), with clients whose clocks are right, a little off, or years off.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.config import Settings
from pipelines.quality.alerting import AlertRules, RoomAlerts
from pipelines.quality.event_time import (
    EventTimeBounds,
    describe,
    judge_event_time,
    max_minutes_before_clock,
)
from pipelines.quality.rollups import DEFAULT_ALLOWED_LATENESS_MS, MINUTE_MS, RoomRollups, minute_of
from pipelines.quality.room.level import RoomLevel, decode_room_level
from pipelines.streaming.clock import DEFAULT_BOUNDS, StreamClock, admit, event_time_bounds

BOUNDS = EventTimeBounds(behind_ms=300_000, ahead_ms=60_000)
T0 = 1_796_644_800_000  # 2026-12-07 12:00 UTC
YEARS = 3 * 365 * 24 * 3600 * 1000


def test_verdicts_at_and_past_the_bounds():
    clock = T0
    assert judge_event_time(clock, clock, BOUNDS) == "accepted"
    assert judge_event_time(clock - 300_000, clock, BOUNDS) == "accepted"
    assert judge_event_time(clock - 300_001, clock, BOUNDS) == "late"
    assert judge_event_time(clock + 60_000, clock, BOUNDS) == "accepted"
    assert judge_event_time(clock + 60_001, clock, BOUNDS) == "ahead"
    assert judge_event_time(1_685_577_600_000, clock, BOUNDS) == "late"  # a 2023 clock


def test_a_clock_that_read_nothing_accepts_everything():
    assert judge_event_time(1, 0, BOUNDS) == "accepted"
    assert judge_event_time(T0 + YEARS, 0, BOUNDS) == "accepted"


def test_the_bounds_come_from_the_settings_and_say_why_in_the_log():
    assert EventTimeBounds(300_000, 60_000) == DEFAULT_BOUNDS
    custom = Settings().with_overrides(event_time_behind_s=30.0, event_time_ahead_s=1.5)
    assert event_time_bounds(custom) == EventTimeBounds(30_000, 1_500)
    assert describe("late", BOUNDS) == "more than 300 s behind the stream clock"
    assert describe("ahead", BOUNDS) == "more than 60 s ahead of the stream clock"
    assert max_minutes_before_clock(BOUNDS) == 5
    assert max_minutes_before_clock(EventTimeBounds(300_001, 0)) == 6


def test_the_bounds_stay_inside_what_a_region_keeps():
    """Room minutes older than a region's 10 kept minutes are dropped by the region: a bound
    past that would let room and region totals disagree."""
    from pipelines.quality.rollups import DEFAULT_REGION_KEEP_MINUTES

    assert max_minutes_before_clock(DEFAULT_BOUNDS) + 2 < DEFAULT_REGION_KEEP_MINUTES


@given(st.integers(-(2**45), 2**45), st.integers(1, 2**45), st.integers(0, 10**7),
       st.integers(0, 10**7))  # fmt: skip
def test_accepted_exactly_within_the_bounds(event, clock, behind, ahead):
    bounds = EventTimeBounds(behind, ahead)
    verdict = judge_event_time(event, clock, bounds)
    assert (verdict == "accepted") == (clock - behind <= event <= clock + ahead)
    assert (verdict == "late") == (event < clock - behind)
    assert (verdict == "ahead") == (event > clock + ahead)


def test_admit_follows_the_stamped_stream_time_not_the_client():
    clock = StreamClock()
    old = RoomLevel("P1:1", "R1", "P1", "eu", 1_685_577_600_000, 3, stream_time=T0)
    assert admit(clock, old, BOUNDS, 0.0) == "late"
    assert clock.now(0.0) == T0  # the wrong clock did not move it
    ahead = RoomLevel("P2:1", "R1", "P2", "eu", T0 + 7_200_000, 3, stream_time=T0 + 1_000)
    assert admit(clock, ahead, BOUNDS, 0.0) == "ahead"
    assert clock.now(0.0) == T0 + 1_000
    good = RoomLevel("P3:1", "R1", "P3", "eu", T0 - 2_000, 3, stream_time=T0 + 2_000)
    assert admit(clock, good, BOUNDS, 0.0) == "accepted"


def test_an_unstamped_record_is_accepted_and_moves_the_clock_as_before():
    clock = StreamClock()
    legacy = RoomLevel("P1:1", "R1", "P1", "eu", T0 - YEARS, 3)
    assert admit(clock, legacy, BOUNDS, 0.0) == "accepted"
    assert clock.now(0.0) == T0 - YEARS


def test_the_stamp_travels_in_the_by_room_record():
    level = RoomLevel("P1:1", "R1", "P1", "eu", T0, 3, stream_time=T0 + 5)
    import msgspec

    data = msgspec.json.encode(level)
    assert b'"streamTime":' in data
    assert decode_room_level(data) == level
    assert b"streamTime" not in msgspec.json.encode(RoomLevel("P1:1", "R1", "P1", "eu", T0, 3))


# -- what clients with any clocks can do to the room stages --------------------------------------

offsets = st.one_of(
    st.just(0),
    st.integers(-120_000, 30_000),  # ordinary drift and queueing
    st.integers(-YEARS, YEARS),  # a clock that lost its time, or a recorded dump
)
steps = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 20_000), st.integers(0, 5)),
    min_size=1,
    max_size=60,
)  # (room, participant, stream time advance ms, level)


def _play(clients: list[int], script: list[tuple[int, int, int, int]]):
    """The stages' loop over one stream; yields (level, verdict, clock) per record and the
    rooms' outputs through ``on_accept``."""
    clock = StreamClock()
    stream = T0
    for i, (room, pid, advance, level) in enumerate(script):
        stream += advance
        sid = f"P{room}-{pid}"
        event = RoomLevel(f"{sid}:{i}", f"R{room}", sid, "eu", stream + clients[room * 4 + pid],
                          level, stream_time=stream)  # fmt: skip
        yield event, admit(clock, event, BOUNDS, 0.0), clock.now(0.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(offsets, min_size=16, max_size=16), steps)
def test_rollups_fill_a_bounded_number_of_minutes_whatever_the_clocks(clients, script):
    rooms: dict[str, RoomRollups] = {}
    minutes: dict[str, set[int]] = {}
    now = T0
    for event, verdict, now in _play(clients, script):
        if verdict == "accepted":
            room = rooms.setdefault(event.room_sid, RoomRollups.for_event(event))
            for m in room.apply(event):
                minutes.setdefault(m.scope_id, set()).add(m.minute)
        for room in rooms.values():  # the timer: every room to the stream's watermark
            for m in room.advance(now - DEFAULT_ALLOWED_LATENESS_MS):
                minutes.setdefault(m.scope_id, set()).add(m.minute)
    earliest = minute_of(T0) - max_minutes_before_clock(BOUNDS) * MINUTE_MS
    latest = minute_of(now + BOUNDS.ahead_ms)
    span = (latest - earliest) // MINUTE_MS + 1
    for room, closed in minutes.items():
        assert min(closed) >= earliest, (room, min(closed) - earliest)
        assert max(closed) <= latest, (room, max(closed) - latest)
        assert len(closed) <= span


@settings(max_examples=200, deadline=None)
@given(st.lists(offsets, min_size=16, max_size=16), steps)
def test_no_alert_opens_before_its_room_was_seen_or_after_the_clock(clients, script):
    rules = AlertRules()
    lateness = int(rules.allowed_lateness_s * 1000)
    rooms: dict[str, RoomAlerts] = {}
    seen_at: dict[str, int] = {}
    alerts = []
    now = T0
    for event, verdict, now in _play(clients, script):
        if verdict == "accepted":
            if event.room_sid not in rooms:  # as the stage makes it: at the stream watermark
                rooms[event.room_sid] = RoomAlerts(event.room_sid, "eu", now - lateness)
                seen_at[event.room_sid] = now - lateness
            alerts += rooms[event.room_sid].apply(event, rules)[0]
        for room in rooms.values():
            alerts += room.advance(now, rules)[0]
    for room in rooms.values():  # long after: every hold and sustain has passed
        alerts += room.advance(now + 3_600_000, rules)[0]
    for alert in alerts:
        assert alert.opened_at >= seen_at[alert.room_sid], alert
        assert alert.timestamp <= now + 3_600_000


def test_a_2023_client_alone_in_live_traffic_opens_and_fills_nothing():
    """The issue's case in miniature: a client with a 2023 clock, stuck at level 0, in a
    stream at 2026, next to a live room."""
    script = [(0, 0, 1_000, 5)] + [(1, 0, 1_000, 0)] * 40 + [(0, 0, 1_000, 5)] * 200
    clients = [0] * 4 + [1_685_577_600_000 - T0] * 4 + [0] * 8
    rooms: dict[str, RoomRollups] = {}
    verdicts = []
    now = T0
    for event, verdict, now in _play(clients, script):
        verdicts.append(verdict)
        if verdict == "accepted":
            rooms.setdefault(event.room_sid, RoomRollups.for_event(event)).apply(event)
        for room in rooms.values():
            room.advance(now - DEFAULT_ALLOWED_LATENESS_MS)
    assert verdicts.count("late") == 40
    assert set(rooms) == {"R0"}
