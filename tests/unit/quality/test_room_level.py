"""The room stages' view of a level event: what the by-room topics carry.

The room stages must see the same thing from a :class:`RoomLevel` record as from the whole
level event (what the levels agent wrote before, and what other producers may still write),
and give the same rollups and alerts from either.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.contracts import encode
from pipelines.contracts.level import (
    LEVEL_SCHEMA,
    BandwidthStats,
    ComponentStats,
    LatencyStats,
    LevelEvent,
    MediaLevels,
)
from pipelines.quality.alerting import AlertRules, RoomAlerts
from pipelines.quality.rollups import RoomRollups
from pipelines.quality.room.level import RoomLevel, decode_room_level, encode_room_level

T0 = 1_763_900_000_000
RULES = AlertRules()

sids = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), min_size=1, max_size=40)
levels = st.integers(0, 5)


@st.composite
def level_events(draw, room: str | None = None, participant: str | None = None) -> LevelEvent:
    level = draw(levels)
    stats = ComponentStats(
        bandwidth=BandwidthStats(level=level, actual=draw(st.floats(0, 1e7)), demand=1e6),
        latency=LatencyStats(level=draw(levels), rtt=draw(st.floats(0, 2)), jitter=0.01),
    )
    pid = participant or draw(sids)
    return LevelEvent(
        schema=LEVEL_SCHEMA,  # type: ignore[arg-type]
        event_id=f"{pid}:{draw(st.integers(1, 10**6))}",
        room_sid=room or draw(sids),
        participant_sid=pid,
        region=draw(st.sampled_from(["us1", "eu-west", "ap-south"])),
        timestamp=T0 + draw(st.integers(0, 600_000)),
        level=level,
        previous_level=draw(st.none() | levels),
        audio=MediaLevels(send=level, recv=draw(levels), send_stats=stats),
        video=MediaLevels(recv=draw(st.none() | levels), recv_stats=stats),
        limited_by=None if level == 5 else draw(st.sampled_from(["video.send.bandwidth", "x"])),
        departed=draw(st.booleans()),
    )


@settings(max_examples=200, deadline=None)
@given(level_events())
def test_a_room_level_and_its_whole_event_decode_alike(event: LevelEvent) -> None:
    compact = encode_room_level(event)
    assert decode_room_level(compact) == decode_room_level(encode(event)) == RoomLevel.of(event)
    assert len(compact) < len(encode(event))


def test_decoded_ids_are_shared_between_records() -> None:
    head = b'"roomSid":"RM1","participantSid":"PA1","region":"us1","limitedBy":"latency"'
    a = decode_room_level(b'{"eventId":"PA1:1",' + head + b',"timestamp":1,"level":2}')
    b = decode_room_level(b'{"eventId":"PA1:2",' + head + b',"timestamp":2,"level":1}')
    for field in ("room_sid", "participant_sid", "region", "limited_by"):
        assert getattr(a, field) is getattr(b, field), field
    assert a.event_id != b.event_id and not a.departed


@pytest.mark.parametrize(
    "record",
    [
        b'{"eventId":"PA1:1","roomSid":"RM1","participantSid":"PA1","region":"us1",'
        b'"timestamp":1,"level":7}',  # no such level
        b'{"roomSid":"RM1","participantSid":"PA1","region":"us1","timestamp":1,"level":3}',
        b'{"eventId":"PA1:1","roomSid":"","participantSid":"PA1","region":"us1",'
        b'"timestamp":1,"level":3}',  # empty room id
        b"not json",
    ],
)
def test_records_that_are_not_room_levels_are_rejected(record: bytes) -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_room_level(record)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ABCD"), st.integers(0, 180_000), levels, st.booleans()),
        min_size=1,
        max_size=40,
    )
)
def test_room_stages_give_the_same_output_from_either_record(script) -> None:
    seq: dict[str, int] = {}
    events = []
    for pid, at, level, departed in script:
        seq[pid] = seq.get(pid, 0) + 1
        event = LevelEvent(
            schema=LEVEL_SCHEMA,  # type: ignore[arg-type]
            event_id=f"{pid}:{seq[pid]}", room_sid="RM1", participant_sid=pid,
            region="us1", timestamp=T0 + at, level=level, previous_level=None,
            audio=MediaLevels(), video=MediaLevels(),
            limited_by=None if level == 5 else "video.send.bandwidth", departed=departed,
        )  # fmt: skip
        events.append(event)
    compact = [decode_room_level(encode_room_level(e)) for e in events]

    def fold(records) -> tuple[list, list, bytes, bytes]:
        rollups, alerts = RoomRollups.for_event(records[0]), RoomAlerts("RM1", "us1")
        minutes, raised = [], []
        for r in records:
            minutes += rollups.apply(r)
            raised += alerts.apply(r, RULES)[0]
        minutes += rollups.advance(T0 + 10 * 60_000)
        raised += alerts.advance(T0 + 10 * 60_000, RULES)[0]
        return minutes, raised, msgspec.msgpack.encode(rollups), msgspec.msgpack.encode(alerts)

    assert fold(compact) == fold(events)
