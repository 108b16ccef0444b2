"""Differential test: the compiled scoring core and its pure-Python sources agree exactly.

The same samples go into an engine of each variant (the pure one is imported afresh from the
``.py`` files beside the compiled one, see ``_native.pure_engine_module``). Events are compared
as encoded JSON (so ``3`` and ``3.0`` differ), and so are the states after every step.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.adapters import samples_from_rtcstats
from pipelines.contracts import decode_stats
from pipelines.contracts.stats import (
    CandidatePair,
    InboundTrack,
    OutboundTrack,
    RemoteInbound,
    StatsSample,
)
from pipelines.demo_data import RTCSTATS
from pipelines.quality import COMPILED, Engine, _native
from pipelines.testing import Conditions, ScriptedParticipant

pytestmark = pytest.mark.skipif(
    not COMPILED, reason=f"no compiled core to compare with: {_native.CHOICE.reason}"
)

DUMPS = sorted(RTCSTATS.iterdir(), key=lambda d: d.name)


def pure_engine() -> type[Engine]:
    return _native.pure_engine_module().Engine


def outputs(
    engine_cls: type[Engine], samples: list[StatsSample], received_at: list[int] | None = None
) -> list[bytes]:
    """Everything observable, step by step: events of each feed and of a sweep, then states."""
    engine = engine_cls()
    out: list[bytes] = []
    for i, sample in enumerate(samples):
        events = engine.feed(sample, None if received_at is None else received_at[i])
        out.append(msgspec.json.encode(events))
        out.append(msgspec.msgpack.encode(engine.states))
    now = max(received_at or [s.timestamp for s in samples] or [0])
    for later in (11_000, 200_000):
        out.append(msgspec.json.encode(engine.sweep(now + later)))
    batch = engine_cls()
    out.append(msgspec.json.encode(batch.feed_batch(samples, received_at)))
    out.append(msgspec.msgpack.encode(batch.states))
    out.append(msgspec.json.encode([engine.counts.__repr__(), batch.counts.__repr__()]))
    return out


def assert_same(samples: list[StatsSample], received_at: list[int] | None = None) -> None:
    compiled = outputs(Engine, samples, received_at)
    pure = outputs(pure_engine(), samples, received_at)
    assert len(compiled) == len(pure)
    for step, (c, p) in enumerate(zip(compiled, pure, strict=True)):
        assert c == p, f"compiled and pure differ at output {step}"


def test_the_two_variants_really_differ_in_kind():
    """Guards the test itself: one engine runs compiled code, the other Python functions."""
    pure_module = _native.pure_engine_module()
    assert inspect.isfunction(pure_module.feed_samples)
    assert pure_module.feed_samples.__code__.co_filename.endswith("feed.py")
    compiled_feed = inspect.getmodule(Engine).feed_samples  # type: ignore[union-attr]
    assert not inspect.isfunction(compiled_feed)
    assert pure_engine() is not Engine


@pytest.mark.parametrize("dump", DUMPS, ids=[d.name for d in DUMPS])
def test_same_events_on_the_bundled_rtcstats_dumps(dump: Path):
    with dump.open(encoding="utf-8") as lines:
        samples = list(samples_from_rtcstats(lines, dump_name=dump.name, on_error=lambda e: None))
    assert samples
    assert_same(samples)


maybe = st.none().__or__
numbers = st.integers(0, 6_000_000) | st.floats(0, 6e6)
seconds = st.integers(0, 2) | st.floats(0, 3)
fractions = st.sampled_from([0, 1]) | st.floats(0, 1)
remotes = st.builds(
    RemoteInbound,
    packets_lost=maybe(st.integers(0, 3000)),
    fraction_lost=maybe(fractions),
    jitter=maybe(seconds),
    round_trip_time=maybe(seconds),
)
# (sid, kind, bytes increment, packets increment, lost increment, counters reset)
track_steps = st.tuples(
    st.sampled_from(["T1", "T2", "T3"]),
    st.sampled_from(["audio", "video"]),
    st.integers(0, 800_000),
    st.integers(0, 800),
    st.integers(0, 80),
    st.sampled_from([False] * 9 + [True]),
)
outbound_extras = st.tuples(
    maybe(numbers),
    maybe(st.sampled_from([0, 180, 360, 540, 720, 1080, 2160])),
    maybe(st.sampled_from(["none", "cpu", "bandwidth", "other"])),
    maybe(remotes),
)
inbound_extras = st.tuples(maybe(seconds), maybe(numbers))
steps = st.tuples(
    st.sampled_from(["P1", "P2"]),
    st.integers(0, 40_000),  # ms since the participant's previous sample
    st.sampled_from([1, 1, 1, 1, 0, -1, 2]),  # seq step: duplicates and out-of-order too
    st.sampled_from(["connected"] * 6 + ["reconnecting", "failed", "new", "disconnected"]),
    maybe(st.builds(CandidatePair, maybe(numbers), maybe(numbers), maybe(seconds))),
    st.lists(st.tuples(track_steps, outbound_extras), max_size=3),
    st.lists(st.tuples(track_steps, inbound_extras), max_size=4),
    st.integers(0, 30_000),  # our receive delay
)


def build(script: list) -> tuple[list[StatsSample], list[int]]:
    """Samples with cumulative counters (resets where drawn) from per-step increments.

    Each goes through the decoder, as every sample the engine meets in production does: it
    makes whole numbers drawn for float fields floats. (A Struct built by hand with an int in a
    float field is outside the contract: compiled code would read it as a float, Python as an
    int, and an event would then carry ``0.0`` instead of ``0``.)
    """
    clock: dict[str, tuple[int, int]] = {}
    totals: dict[tuple[str, str, str], list[int]] = {}
    samples, received = [], []

    def counters(key: tuple[str, str, str], step: tuple) -> list[int]:
        _, _, d_bytes, d_packets, d_lost, reset = step
        old = totals.get(key, [0, 0, 0])
        new = [d_bytes, d_packets, d_lost] if reset else [
            old[0] + d_bytes, old[1] + d_packets, old[2] + d_lost]  # fmt: skip
        totals[key] = new
        return new

    for pid, gap, seq_step, state, pair, outs, ins, delay in script:
        timestamp, seq = clock.get(pid, (1_763_900_000_000, 0))
        timestamp, seq = timestamp + gap, max(seq + seq_step, 0)
        clock[pid] = (timestamp, seq)
        outbound = []
        for step, (target, height, reason, drawn) in outs:
            b, p, lost = counters((pid, "out", step[0]), step)
            remote = drawn
            if drawn is not None and drawn.packets_lost is not None:
                remote = msgspec.structs.replace(drawn, packets_lost=lost)
            outbound.append(OutboundTrack(
                step[0], step[1], b, p, target_bitrate=target, frame_height=height,
                quality_limitation_reason=reason, remote=remote))  # fmt: skip
        inbound = []
        for step, (jitter, expected) in ins:
            b, p, lost = counters((pid, "in", step[0]), step)
            inbound.append(InboundTrack(step[0], step[1], b, p, lost, jitter, expected))
        sample = StatsSample(
            "netquality.stats.v1", "R1", pid, "eu", timestamp, seq, state, pair, outbound,
            inbound)  # fmt: skip
        samples.append(decode_stats(msgspec.json.encode(sample)))
        received.append(timestamp + delay)
    return samples, received


@settings(max_examples=120, deadline=None)
@given(script=st.lists(steps, min_size=1, max_size=25))
def test_same_outputs_on_random_samples(script):
    samples, received = build(script)
    assert_same(samples, received)
    assert_same(samples)


conditions = st.builds(
    Conditions,
    uplink=st.floats(10_000, 10_000_000),
    downlink=st.floats(10_000, 20_000_000),
    loss=st.floats(0, 0.5),
    rtt=st.floats(0, 3.0),
    jitter=st.floats(0, 0.5),
    state=st.sampled_from(["connected"] * 5 + ["reconnecting", "failed"]),
)


@settings(max_examples=40, deadline=None)
@given(script=st.lists(conditions, min_size=1, max_size=30), video=st.booleans())
def test_same_outputs_on_scripted_participants(script, video):
    p = ScriptedParticipant(
        "P", publish_video=video, subscribe_audio=2, subscribe_video=2 if video else 0
    )
    assert_same([p.step(c) for c in script])
