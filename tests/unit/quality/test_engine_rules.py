"""The level rules of ARCHITECTURE.md section 1, one scripted scenario each."""

from __future__ import annotations

import itertools

import msgspec
import pytest

from pipelines.contracts import StatsSample, decode_level, encode
from pipelines.quality import Engine, Thresholds
from pipelines.quality.scoring import bandwidth_score, latency_score, loss_score
from pipelines.testing import Conditions, ScriptedParticipant

CLEAN = Conditions()


def run(participant: ScriptedParticipant, conditions: list[Conditions], engine=None):
    engine = engine or Engine()
    events = []
    for c in conditions:
        events.extend(engine.feed(participant.step(c)))
    return engine, events


def video_caller(sid: str = "PA1") -> ScriptedParticipant:
    return ScriptedParticipant(sid, publish_video=True, subscribe_audio=1, subscribe_video=1)


def test_first_sample_always_emits_with_null_previous_level():
    _, events = run(video_caller(), [CLEAN])
    assert len(events) == 1
    assert events[0].previous_level is None
    assert events[0].level == 5
    assert events[0].event_id == "PA1:1"


def test_steady_clean_network_emits_nothing_after_the_first_event():
    _, events = run(video_caller(), [CLEAN] * 20)
    assert [e.level for e in events] == [5]


def test_nothing_published_or_subscribed_is_five_even_on_a_terrible_network():
    idle = ScriptedParticipant("PA1", publish_audio=False)
    awful = Conditions(uplink=1_000, downlink=1_000, loss=0.5, rtt=2.0, jitter=0.5)
    _, events = run(idle, [awful] * 5)
    assert [e.level for e in events] == [5]
    assert events[0].audio.send is None and events[0].video.recv is None
    assert events[0].limited_by is None


def test_same_network_is_five_for_audio_and_one_for_hd_video():
    # A flat estimate is not a ramp-up: the call-start grace ends after ramp_plateau_s.
    network = Conditions(uplink=300_000)
    _, audio = run(ScriptedParticipant("PA1"), [network] * 8)
    _, video = run(ScriptedParticipant("PA2", publish_video=True), [network] * 8)
    assert audio[-1].level == 5
    assert video[-1].level == 1
    assert video[-1].limited_by == "video.send.bandwidth"


@pytest.mark.parametrize("state", ["reconnecting", "failed", "connecting", "new"])
def test_not_connected_is_zero_at_once(state):
    p = video_caller()
    _, events = run(p, [CLEAN] * 3 + [Conditions(state=state)])
    assert events[-1].level == 0
    assert events[-1].previous_level == 5
    assert events[-1].limited_by == "connectionState"


def test_recovery_from_reconnecting_is_immediate():
    _, events = run(video_caller(), [CLEAN] * 3 + [Conditions(state="reconnecting"), CLEAN])
    assert [e.level for e in events] == [5, 0, 5]


def test_disconnected_emits_a_final_departed_event_and_drops_state():
    engine, events = run(video_caller(), [CLEAN] * 2 + [Conditions(state="disconnected")])
    assert events[-1].departed is True
    assert events[-1].level == 0
    assert "PA1" not in engine.states
    assert engine.counts.departed == 1


def test_loss_drops_as_far_as_it_proves_and_recovers_one_level_per_dwell():
    lossy = Conditions(loss=0.12)
    script = [CLEAN] * 5 + [lossy] * 6 + [CLEAN] * 30
    _, events = run(video_caller(), script)
    drop = events[1]
    assert drop.event_id == "PA1:6"  # the first lossy sample already says something
    assert drop.limited_by.endswith(".fractionLost")
    lossy_events = [e for e in events if 6 <= int(e.event_id.split(":")[1]) <= 11]
    assert min(e.level for e in lossy_events) <= 2  # 12 % over hundreds of packets is poor
    assert [e.level for e in lossy_events] == sorted((e.level for e in lossy_events), reverse=True)
    # Recovery: one level at a time, each step at least a dwell after the previous one.
    dwell_ms = Thresholds().upgrade_dwell_s * 1000
    rises = [(a, b) for a, b in itertools.pairwise(events) if b.level > a.level]
    assert rises and all(b.level == a.level + 1 for a, b in rises)
    steps = [b for _, b in rises]
    assert all(y.timestamp - x.timestamp >= dwell_ms for x, y in itertools.pairwise(steps))
    assert events[-1].level == 5
    loss_end = events[0].timestamp + 10_000
    assert 9_000 <= events[-1].timestamp - loss_end <= 20_000  # "on the order of 15 s"


def test_alternating_clean_and_lossy_every_second_does_not_flap():
    script = [CLEAN, Conditions(loss=0.08)] * 15
    _, events = run(video_caller(), script)
    levels = [e.level for e in events]
    # It settles on the pooled evidence (the first lossy window alone may say more, then the
    # clean windows average it down) and then holds: at most one turn, never back to 5.
    moves = [b > a for a, b in itertools.pairwise(levels)]
    assert len(levels) <= 4
    assert sum(1 for x, y in itertools.pairwise(moves) if x != y) <= 1
    assert 5 not in levels[1:]


def test_every_event_names_the_limiting_metric_below_five():
    script = [CLEAN, Conditions(rtt=1.5), Conditions(uplink=200_000), Conditions(loss=0.3)]
    _, events = run(video_caller(), script)
    for event in events:
        if event.level < 5:
            kind, direction, metric = event.limited_by.split(".")
            assert kind in {"audio", "video"} and direction in {"send", "recv"}
            assert metric in {"bandwidth", "fractionLost", "latency"}
            media = getattr(event, kind)
            assert getattr(media, direction) == event.level
        elif event.level == 5:
            assert event.limited_by is None


def test_overall_is_min_of_components():
    _, events = run(video_caller(), [CLEAN, Conditions(uplink=900_000)])
    e = events[-1]
    comps = [e.audio.send, e.audio.recv, e.video.send, e.video.recv]
    assert e.level == min(c for c in comps if c is not None)
    assert e.video.send < 5 and e.audio.send == 5


def test_high_latency_limits_by_latency():
    _, events = run(ScriptedParticipant("PA1"), [Conditions(rtt=1.4, jitter=0.05)] * 2)
    assert events[0].level <= 2
    assert events[0].limited_by == "audio.send.latency"


def test_duplicate_and_out_of_order_samples_are_ignored():
    p = video_caller()
    engine = Engine()
    samples = [p.step(CLEAN) for _ in range(4)]
    lossy = p.step(Conditions(loss=0.2))
    events = engine.feed_batch([*samples, samples[1], samples[3], lossy, lossy])
    assert engine.counts.ignored == 3
    assert [e.level for e in events] == [5, events[-1].level]
    assert events[-1].level < 5


def test_counter_reset_does_not_invent_loss_or_bitrate():
    p = video_caller()
    engine = Engine()
    for _ in range(3):
        engine.feed(p.step(CLEAN))
    # The client restarts its peer connection: every counter starts again near zero.
    p._out.clear()
    p._in.clear()
    events = engine.feed(p.step(CLEAN)) + engine.feed(p.step(CLEAN))
    assert events == []


def test_gap_longer_than_stale_threshold_reports_zero_then_recovers():
    p = video_caller()
    engine = Engine()
    for _ in range(3):  # the engine learns this client samples every second
        engine.feed(p.step(CLEAN))
    p.seq += 30  # 30 s of silence
    events = engine.feed(p.step(CLEAN))
    assert [e.level for e in events] == [0, 5]
    assert events[0].limited_by == "staleness"
    assert events[0].event_id.endswith(":stale")


def test_a_client_sampling_every_ten_seconds_is_not_stale_between_samples():
    p = ScriptedParticipant("PA1", publish_video=True, interval_ms=10_000)
    engine = Engine()
    events = []
    for _ in range(6):
        events += engine.feed(p.step(CLEAN))
    assert [e.level for e in events] == [5]
    assert engine.states["PA1"].interval == 10_000
    p.seq += 4  # 50 s of silence: more than three missed samples is news
    events = engine.feed(p.step(CLEAN))
    assert [e.level for e in events] == [0, 5]


def test_sweep_marks_silent_participants_stale_then_expires_them():
    p = video_caller()
    engine = Engine(participant_ttl_s=60)
    engine.feed(p.step(CLEAN), received_at=0)
    engine.feed(p.step(CLEAN), received_at=1_000)
    assert engine.sweep(5_000) == []
    stale = engine.sweep(12_000)
    assert [e.level for e in stale] == [0]
    assert engine.sweep(13_000) == []  # stale once, not every sweep
    expired = engine.sweep(62_000)
    assert len(expired) == 1 and expired[0].departed
    assert engine.states == {}


def test_bandwidth_limited_encoder_is_scored_against_its_earlier_demand():
    """Chrome lowers targetBitrate to the estimate; the level must still show the shortfall."""
    p = ScriptedParticipant("PA1", publish_video=True)
    _, events = run(p, [CLEAN] * 2 + [Conditions(uplink=400_000)] * 5)
    assert events[-1].level <= 2
    demand = events[-1].video.send_stats.bandwidth.demand
    assert 1_000_000 < demand <= 1_500_000  # remembered, decaying with its half-life


def test_events_round_trip_through_the_level_contract():
    _, events = run(video_caller(), [CLEAN, Conditions(loss=0.1), Conditions(state="failed")])
    for event in events:
        assert decode_level(encode(event)) == event


def test_events_for_many_interleaved_participants_are_per_participant():
    a, b = video_caller("A"), video_caller("B")
    engine = Engine()
    events = []
    for i in range(10):
        events += engine.feed(a.step(CLEAN))
        events += engine.feed(b.step(Conditions(loss=0.2) if i >= 5 else CLEAN))
    assert [(e.participant_sid, e.level) for e in events if e.participant_sid == "A"] == [("A", 5)]
    b_events = [e for e in events if e.participant_sid == "B"]
    assert b_events[1].event_id == "B:6" and b_events[1].level <= 3  # B's first lossy sample
    assert b_events[-1].level == 1


def test_scores_anchor_published_behaviour():
    th = Thresholds()
    # LiveKit: Opus at 1 % loss excellent, 4 % good, 9 % poor; Jitsi: >= 10 % loss poor.
    assert th.level_of(loss_score(0.01, th.loss_weight_audio)) == 5
    assert th.level_of(loss_score(0.04, th.loss_weight_audio)) == 4
    assert th.level_of(loss_score(0.09, th.loss_weight_audio)) <= 2
    assert th.level_of(loss_score(0.10, th.loss_weight_video)) <= 2
    # ITU-T G.114: 150 ms one way is fine; far beyond 400 ms is not.
    assert th.level_of(latency_score(0.2, 0.01, th)) == 5
    assert th.level_of(latency_score(1.6, 0.05, th)) <= 2
    assert bandwidth_score(2_000_000, 1_000_000, th) == 100.0
    assert th.level_of(bandwidth_score(300_000, 2_500_000, th)) == 1


def test_state_survives_serialisation_mid_stream():
    from pipelines.quality import dump_state, load_state

    p = video_caller()
    live, restored = Engine(), Engine()
    script = [CLEAN] * 3 + [Conditions(loss=0.08)] * 2 + [CLEAN] * 8
    samples: list[StatsSample] = [p.step(c) for c in script]
    live_events = live.feed_batch(samples)
    restored_events = restored.feed_batch(samples[:4])
    restored.states = {k: load_state(dump_state(v)) for k, v in restored.states.items()}
    restored_events += restored.feed_batch(samples[4:])
    assert [msgspec.to_builtins(e) for e in live_events] == [
        msgspec.to_builtins(e) for e in restored_events
    ]
