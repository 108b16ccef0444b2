"""Whose network: the attribution rule, the views, the engine's uplink API (issue 27)."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.clients.getstats import GetStatsSampler
from pipelines.contracts.stats import STATS_SCHEMA, InboundTrack, StatsSample
from pipelines.quality import DEFAULT_THRESHOLDS, Engine
from pipelines.quality.attribution import (
    RoomViews,
    UplinkChange,
    UplinkCondition,
    UpstreamView,
    ViewStore,
    ViewUpdate,
    adjust_recv,
    quantised,
    upstream_for,
)
from pipelines.quality.thresholds import VIEW_LAG_MS
from pipelines.testing import Conditions, ScriptedParticipant
from pipelines.testing.room import START_MS, four_members, room_samples

TH = DEFAULT_THRESHOLDS
FIXTURES = Path(__file__).parents[2] / "fixtures"


def track(sid: str, received: int, lost: int, kind: str = "video", expected=None) -> InboundTrack:
    return InboundTrack(
        track_sid=sid, kind=kind, bytes_received=received * 1000, packets_received=received,
        packets_lost=lost, expected_bitrate=expected,
    )  # fmt: skip


def condition(loss: float = 0.0, limited: float = 1.0, sid="MT1", kind="video", who="PA02"):
    return UplinkCondition(who, sid, kind, loss, limited)


def window(lost: int, packets: int, expected: float = 0.0):
    """A video receive window (see window.RecvWindow) of one track."""
    return (1, packets * 1000, lost, packets, expected, expected > 0, 0.002, packets)


PREVIOUS = {"MT1": (1_000_000, 1000, 0)}


def adjusted(received: int, lost: int, c: UplinkCondition | None, expected=None):
    """The video window of one track after a second of ``received`` + ``lost`` packets."""
    t = track("MT1", 1000 + received, lost, expected=expected)
    w = window(lost, received + lost, expected or 0.0)
    upstream = {} if c is None else {"MT1": c}
    return adjust_recv([t], PREVIOUS, True, (), None, w, upstream)[1]


# --- the rule ----------------------------------------------------------------------------


def test_upstream_only_leaves_the_subscriber_no_loss():
    # 100 expected, 10 lost: all of it on the publisher's 10 % uplink.
    w = adjusted(90, 10, condition(0.10))
    assert (w[2], w[3]) == (0, 90)


def test_downstream_only_is_left_alone():
    w = adjusted(90, 10, condition(0.0))
    assert (w[2], w[3]) == (10, 100)
    assert adjusted(90, 10, None) == window(10, 100)


def test_both_leaves_the_subscribers_own_share():
    # 10 % upstream and 10 % on the subscriber's own downlink: 19 of 100 lost.
    w = adjusted(81, 19, condition(0.10))
    assert (w[2], w[3]) == (9, 90)  # 1 - (1 - 0.19) / (1 - 0.10) = 10 %


def test_lost_is_clamped_at_zero():
    w = adjusted(98, 2, condition(0.10))
    assert (w[2], w[3]) == (0, 90)


def test_a_limited_publisher_scales_the_expected_bitrate():
    w = adjusted(100, 0, condition(0.0, limited=0.4), expected=1_000_000.0)
    assert w[4] == pytest.approx(400_000.0)


def test_a_restarted_track_removes_nothing():
    t = track("MT1", 1090, 10)
    w = window(0, 0)
    assert adjust_recv([t], PREVIOUS, True, ("MT1",), None, w, {"MT1": condition(0.1)})[1] == w


def test_quantised_holds_near_an_edge():
    step, h = TH.upstream_loss_step, TH.upstream_hysteresis
    assert quantised(0.0312, 0.0, step, h) == 0.03
    assert quantised(0.0299, 0.03, step, h) == 0.03  # within the margin below
    assert quantised(0.0374, 0.03, step, h) == 0.03  # within the margin above
    assert quantised(0.0376, 0.03, step, h) == 0.035


# --- the view ----------------------------------------------------------------------------


def sample(sid="PA01", at=START_MS, topology="sfu") -> StatsSample:
    return StatsSample(
        schema=STATS_SCHEMA, room_sid="RM", participant_sid=sid, region="us1", timestamp=at,
        seq=1, connection_state="connected", topology=topology,
    )  # fmt: skip


def view_with(size: int, at: int = START_MS) -> UpstreamView:
    view = UpstreamView()
    view.apply(ViewUpdate("PA01", at, room_size=size))
    view.apply(ViewUpdate("PA01", at, "MT1", condition(0.1)))
    return view


def test_view_lag_boundary():
    view = view_with(4)
    assert upstream_for(view, sample(at=START_MS + VIEW_LAG_MS), TH) == {"MT1": condition(0.1)}
    assert upstream_for(view, sample(at=START_MS + VIEW_LAG_MS - 1), TH) is None


def test_p2p_is_never_attributed():
    later = START_MS + VIEW_LAG_MS
    assert upstream_for(view_with(4), sample(at=later, topology="p2p"), TH) is None
    # Not said: it may be P2P, whatever the room's size (a wrong guess blames the wrong one).
    assert upstream_for(view_with(2), sample(at=later, topology=None), TH) is None
    assert upstream_for(view_with(10), sample(at=later, topology=None), TH) is None
    assert upstream_for(view_with(2), sample(at=later), TH) is not None


def test_a_missing_publisher_means_no_view():
    view = UpstreamView()
    view.apply(ViewUpdate("PA01", START_MS, room_size=4))
    assert upstream_for(view, sample(at=START_MS + 10_000), TH) is None


def test_room_views_forward_to_others_and_forget_who_left():
    rooms, store = RoomViews(), ViewStore()
    c = condition(0.1)
    for change in (
        UplinkChange("joined", "RM", "PA01", START_MS),
        UplinkChange("joined", "RM", "PA02", START_MS + 100),
        UplinkChange("uplink", "RM", "PA02", START_MS + 200, "MT1", c),
        UplinkChange("joined", "RM", "PA03", START_MS + 300),  # a newcomer gets the condition
    ):
        store.apply(rooms.apply(change))
    assert store.get("PA02") is not None and store.get("PA02").tracks == {}
    for sid in ("PA01", "PA03"):
        assert store.get(sid).conditions_at(START_MS + 5000) == {"MT1": c}
        assert store.get(sid).room_size_at(START_MS + 5000) == 3
    store.apply(rooms.apply(UplinkChange("left", "RM", "PA02", START_MS + 6000)))
    assert store.get("PA02") is None
    assert store.get("PA01").conditions_at(START_MS + 5999) == {"MT1": c}
    assert store.get("PA01").conditions_at(START_MS + 6000) == {}  # the publisher left
    assert store.get("PA01").room_size_at(START_MS + 6000) == 2


def test_a_replay_after_a_restart_leaves_the_views_as_they_were():
    """A restarted worker re-sends what it sent before its last commit: the room hop forwards
    nothing new, and a view given an update twice holds it once."""
    rooms, store = RoomViews(), ViewStore()
    changes = [UplinkChange("joined", "RM", "PA01", START_MS)] + [
        UplinkChange("uplink", "RM", "PA02", START_MS + 1000 * i, "MT1", condition(0.01 * i))
        for i in range(1, 30)
    ]
    for change in changes:
        store.apply(rooms.apply(change))
    before = msgspec.json.encode(store.get("PA01"))
    assert rooms.apply(changes[-1]) == []  # the change the room already holds: nothing to send
    for change in changes[10:]:  # a replay from an older offset, into the restored rooms
        store.apply(rooms.apply(change))
    assert msgspec.json.encode(store.get("PA01")) == before
    # The views ignore a repeated update too (the room hop replays its own outputs).
    for change in changes[1:]:
        store.apply(rooms.apply(change))
    assert msgspec.json.encode(store.get("PA01")) == before
    for at in range(START_MS + 14_000, START_MS + 31_000, 500):  # the 16 entries a view keeps
        assert store.get("PA01").conditions_at(at) == ViewStore_lookup(changes, at)


def ViewStore_lookup(changes: list[UplinkChange], at: int) -> dict:  # noqa: N802
    """What a view replayed from scratch once says at ``at``: the latest condition by then."""
    latest = {}
    for c in changes:
        if c.what == "uplink" and c.at_ms <= at:
            latest[c.track_sid] = c.condition
    return latest


# --- the engine ----------------------------------------------------------------------------


def test_the_engine_reports_changed_conditions_only_and_gone_on_expiry():
    engine = Engine(uplinks=True, participant_ttl_s=60)
    p = ScriptedParticipant("PA02", publish_video=True, exact_loss=True)
    engine.feed(p.step())
    assert engine.take_uplink_changes() == []  # it does not say it goes through an SFU
    engine = Engine(uplinks=True, participant_ttl_s=60)
    p = ScriptedParticipant("PA02", publish_video=True, exact_loss=True)

    def sfu(sample):
        return msgspec.structs.replace(sample, topology="sfu")

    for _ in range(5):
        engine.feed(sfu(p.step()))
    changes = engine.take_uplink_changes()
    # Clean tracks (no loss, not limited) take nothing off: they are not announced.
    assert [c.what for c in changes] == ["joined"]
    assert {(c.kind, c.loss, c.limited) for c in engine.uplinks_of("PA02")} == {
        ("audio", 0.0, 1.0), ("video", 0.0, 1.0)}  # fmt: skip
    for _ in range(10):
        engine.feed(sfu(p.step(Conditions(loss=0.1))))
    losses = [c.condition.loss for c in engine.take_uplink_changes()]
    assert 0 < len(losses) <= 12 and max(losses) >= 0.07
    assert {c.track_sid for c in engine.uplinks_of("PA02")} == {"MTa-PA02", "MTv-PA02"}
    assert engine.take_uplink_changes() == []
    engine.sweep(p.start_ms + p.seq * 1000 + 61_000)
    assert [c.what for c in engine.take_uplink_changes()] == ["left"]


def test_without_uplinks_the_engine_derives_nothing():
    engine = Engine()
    engine.feed(ScriptedParticipant("PA02", publish_video=True).step())
    assert engine.take_uplink_changes() == [] and engine.uplinks_of("PA02") == []


SUBSCRIBED = ("MTra0", "MTra1", "MTrv0")


def recv_levels(script, upstream: dict[str, UplinkCondition] | None) -> list[tuple]:
    p = ScriptedParticipant("PA01", subscribe_audio=2, subscribe_video=1, exact_loss=True)
    view = None
    if upstream is not None:
        view = UpstreamView()
        view.apply(ViewUpdate("PA01", 0, room_size=4))
        for sid, c in upstream.items():
            view.apply(ViewUpdate("PA01", 0, sid, c))
    engine = Engine()
    out = []
    for c in script:
        engine.feed(p.step(c), view=view)
        s = engine.states["PA01"]
        out.append((s.audio_recv and s.audio_recv.level, s.video_recv and s.video_recv.level))
    return out


networks = st.lists(
    st.builds(Conditions, loss=st.floats(0, 0.4), downlink=st.floats(100_000, 5_000_000)),
    min_size=1,
    max_size=15,
)
uplinks = st.fixed_dictionaries(
    {sid: st.tuples(st.floats(0, 0.3), st.floats(0.05, 1.0)) for sid in SUBSCRIBED}
)


@settings(max_examples=60, deadline=None)
@given(networks, uplinks)
def test_attribution_never_lowers_a_receive_level(script, raw):
    upstream = {
        sid: condition(
            round(loss, 3), round(limited, 2), sid, "video" if "v" in sid[3:] else "audio"
        )
        for sid, (loss, limited) in raw.items()
    }
    alone_levels, attributed_levels = recv_levels(script, None), recv_levels(script, upstream)
    for alone, attributed in zip(alone_levels, attributed_levels, strict=True):
        for a, b in zip(alone, attributed, strict=True):
            assert a is None or b >= a


@settings(max_examples=40, deadline=None)
@given(networks)
def test_no_upstream_loss_scores_as_today(script):
    none = {sid: condition(0.0, 1.0, sid) for sid in SUBSCRIBED}
    assert recv_levels(script, none) == recv_levels(script, None)


def attributed_room(members, topology):
    """(events scored with the room's views, events scored alone, the views at the end)."""
    members[1].uplink.append((10, 30, 0.2))
    samples = room_samples(members, 40, topology=topology)
    engine, rooms, store = Engine(uplinks=True), RoomViews(), ViewStore()

    def view_of(sid):
        for change in engine.take_uplink_changes():
            store.apply(rooms.apply(change))
        return store.get(sid)

    events = engine.feed_batch(samples, views=view_of)
    view_of("")
    return events, Engine().feed_batch(samples), store


def test_a_room_of_p2p_samples_scores_as_today():
    attributed, alone, _ = attributed_room(four_members()[:2], "p2p")
    assert attributed == alone


def test_a_departed_member_is_gone_from_the_views():
    members = four_members()
    members[1].leave_s = 10
    engine, rooms, store = Engine(uplinks=True), RoomViews(), ViewStore()
    engine.feed_batch(room_samples(members, 12))
    for change in engine.take_uplink_changes():
        store.apply(rooms.apply(change))
    assert store.get("PA02") is None
    view = store.get("PA01")
    assert not any(s.startswith("MT-PA02") for s in view.conditions_at(START_MS + 20_000))
    assert view.room_size_at(START_MS + 20_000) == 3


def test_the_python_sampler_says_the_topology_when_told():
    report = json.loads((FIXTURES / "getstats" / "first.json").read_text())
    sampler = GetStatsSampler("RM", "PA01", "us1")
    assert sampler.sample(report, topology="sfu").topology == "sfu"
    assert sampler.sample(report).topology is None


def test_a_room_that_does_not_say_its_topology_scores_as_today_and_tells_nothing():
    attributed, alone, store = attributed_room(four_members(), None)
    assert attributed == alone and not store.views
