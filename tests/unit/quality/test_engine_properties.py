"""Property tests of the engine: invariants that must hold for any network and any history."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.quality import Engine
from pipelines.quality.participant import pool_of
from pipelines.testing import Conditions, ScriptedParticipant

conditions = st.builds(
    Conditions,
    uplink=st.floats(10_000, 10_000_000),
    downlink=st.floats(10_000, 20_000_000),
    loss=st.floats(0, 0.5),
    rtt=st.floats(0, 3.0),
    jitter=st.floats(0, 0.5),
)
scripts = st.lists(conditions, min_size=1, max_size=12)
states = st.sampled_from(
    ["new", "connecting", "connected", "reconnecting", "failed", "connected", "connected"]
)


def participant(sid: str = "P", **kwargs) -> ScriptedParticipant:
    defaults = dict(publish_video=True, subscribe_audio=2, subscribe_video=1)
    return ScriptedParticipant(sid, **{**defaults, **kwargs})


def levels(p: ScriptedParticipant, script: list[Conditions]) -> list[int]:
    """The participant's overall level after each sample."""
    engine = Engine()
    out = []
    for c in script:
        engine.feed(p.step(c))
        out.append(engine.states[p.participant_sid].level)
    return out


def assert_never_higher(
    better: ScriptedParticipant,
    better_script: list[Conditions],
    worse: ScriptedParticipant,
    worse_script: list[Conditions],
) -> None:
    """After every sample, the participant with the worse network or more demand is not above."""
    for better_level, worse_level in zip(
        levels(better, better_script), levels(worse, worse_script), strict=True
    ):
        assert worse_level <= better_level


@settings(max_examples=150, deadline=None)
@given(script=st.lists(st.tuples(conditions, states), min_size=1, max_size=15))
def test_level_is_always_between_zero_and_five(script):
    engine = Engine()
    p = participant()
    for c, state in script:
        for event in engine.feed(p.step(replace(c, state=state))):
            assert 0 <= event.level <= 5
            comps = (event.audio.send, event.audio.recv, event.video.send, event.video.recv)
            for comp in comps:
                assert comp is None or 0 <= comp <= 5
            if 0 in comps:  # only a stall makes a component 0, and it names itself
                assert event.level == 0
                assert event.limited_by.endswith(".stalled") or event.limited_by in (
                    "connectionState", "staleness")


@settings(max_examples=100, deadline=None)
@given(script=scripts, extra=st.lists(st.floats(0, 0.5), min_size=12, max_size=12))
def test_more_loss_never_gives_a_higher_level(script, extra):
    worse = [replace(c, loss=min(c.loss + e, 1.0)) for c, e in zip(script, extra, strict=False)]
    assert_never_higher(participant(), script, participant(), worse)


@settings(max_examples=100, deadline=None)
@given(script=scripts, extra=st.lists(st.floats(0, 2.0), min_size=12, max_size=12))
def test_more_rtt_never_gives_a_higher_level(script, extra):
    worse = [replace(c, rtt=c.rtt + e) for c, e in zip(script, extra, strict=False)]
    assert_never_higher(participant(), script, participant(), worse)


@settings(max_examples=100, deadline=None)
@given(script=scripts, extra=st.lists(st.floats(0, 0.5), min_size=12, max_size=12))
def test_more_jitter_never_gives_a_higher_level(script, extra):
    worse = [replace(c, jitter=c.jitter + e) for c, e in zip(script, extra, strict=False)]
    assert_never_higher(participant(), script, participant(), worse)


@settings(max_examples=100, deadline=None)
@given(
    script=scripts,
    video=st.floats(100_000, 3_000_000),
    more=st.floats(0, 3_000_000),
    subscribed=st.floats(100_000, 3_000_000),
)
def test_more_demand_on_the_same_network_never_gives_a_higher_level(
    script, video, more, subscribed
):
    # Loss is held at 0: a lossy window's *measured* fraction depends on how many packets the
    # demand makes (1 lost of 11 is 9 %, of 15 is 7 %), which is arithmetic, not the network.
    script = [replace(c, loss=0.0) for c in script]
    low = participant(video_bitrate=video, subscribed_video_bitrate=subscribed)
    high = participant(video_bitrate=video + more, subscribed_video_bitrate=subscribed + more)
    assert_never_higher(low, script, high, script)


@settings(max_examples=50, deadline=None)
@given(script=scripts)
def test_nothing_published_or_subscribed_is_always_five(script):
    idle = ScriptedParticipant("P", publish_audio=False)
    assert set(levels(idle, script)) == {5}


@settings(max_examples=50, deadline=None)
@given(script=scripts, state=st.sampled_from(["reconnecting", "failed"]))
def test_reconnecting_gives_zero_whatever_the_network(script, state):
    p = participant()
    assert levels(p, [*script, replace(script[-1], state=state)])[-1] == 0


@settings(max_examples=50, deadline=None)
@given(
    loss=st.floats(0.05, 0.5),
    seconds=st.integers(8, 30),
    clean=st.builds(Conditions, rtt=st.floats(0, 0.1), jitter=st.floats(0, 0.01)),
)
def test_alternating_clean_and_lossy_each_second_does_not_change_level_each_second(
    loss, seconds, clean
):
    script = [clean if i % 2 == 0 else replace(clean, loss=loss) for i in range(seconds)]
    trace = levels(participant(), script)
    # The level settles on what the pooled evidence says (a first lossy window of hundreds of
    # packets may say more, then the pool averages it down), in a few steps, but it does not
    # flap: once it has turned, it never turns back.
    moves = [b > a for a, b in pairwise(trace) if a != b]
    assert len(moves) <= 4
    assert sum(1 for x, y in pairwise(moves) if x != y) <= 1


@settings(max_examples=60)
@given(
    loss=st.floats(0.0, 0.9),
    extra=st.floats(0.0, 0.1),
    rate=st.sampled_from([3.0, 8.0, 50.0]),
)
def test_more_loss_on_a_low_rate_subscription_never_reads_higher(loss, extra, rate):
    """Per component, on a subscribe-only participant (nothing else pulls the level down):
    sparse streams have quiet windows and late-counted loss, and neither may hide loss."""

    def recv_levels(fraction: float) -> list[int]:
        p = ScriptedParticipant("P", publish_audio=False, subscribe_audio=1,
                                audio_packet_rate=rate)  # fmt: skip
        engine = Engine()
        out = []
        for _ in range(25):
            engine.feed(p.step(Conditions(loss=fraction)))
            out.append(engine.states["P"].audio_recv.level)
        return out

    for better, worse in zip(recv_levels(loss), recv_levels(min(loss + extra, 1.0)), strict=True):
        assert worse <= better


def test_a_stall_stays_when_the_rest_goes_quiet_too():
    """A camera that stopped, then a downlink that died 15 s later, is not a suspension."""
    p = ScriptedParticipant("P", publish_video=True, subscribe_audio=1)
    engine = Engine()
    levels = []
    for i in range(45):
        p.video_stopped = i >= 10
        engine.feed(p.step(Conditions(downlink=0.0) if i >= 25 else Conditions()))
        levels.append(engine.states["P"].level)
    assert levels[9] == 5
    assert all(level == 0 for level in levels[16:])


def test_a_gap_in_the_stats_neither_ends_a_stall_nor_breaks_the_loss_pool():
    p = ScriptedParticipant("P", publish_video=True, subscribe_audio=1)
    engine = Engine()
    for i in range(20):
        p.video_stopped = i >= 5
        engine.feed(p.step())
    assert engine.states["P"].level == 0
    p.interval_ms = 15_000  # one long gap: no window, no evidence either way
    engine.feed(p.step())
    p.interval_ms = 1_000
    engine.feed(p.step())
    assert engine.states["P"].level == 0


def test_a_client_clock_that_steps_back_an_hour_is_scored_without_error():
    p = ScriptedParticipant("P", publish_video=True, subscribe_audio=1)
    engine = Engine()
    for _ in range(5):
        engine.feed(p.step(Conditions(loss=0.05)))
    p.start_ms -= 3_600_000
    events = engine.feed(p.step(Conditions(loss=0.05)))
    assert all(0 <= e.level <= 5 for e in events)
    packets, lost = pool_of(engine.states["P"].audio_send)
    assert 0 <= lost <= packets < 1_000
