"""``Engine.feed_batch`` in chunks gives exactly what ``Engine.feed`` one by one gives.

Same events (compared as builtins, so every field and stat counts), same final states (compared
as the bytes ``dump_state`` writes to the changelog) and same counts, for random streams of
many interleaved participants with duplicates, out-of-order samples, counter resets, gaps,
reconnects and departures.
"""

from __future__ import annotations

import random

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.contracts.stats import StatsSample
from pipelines.quality import Engine, dump_state
from pipelines.testing import random_stream


def one_by_one(samples: list[StatsSample], received_at: list[int | None]) -> Engine:
    engine = Engine()
    engine.events = []  # type: ignore[attr-defined]
    for sample, at in zip(samples, received_at, strict=True):
        engine.events += engine.feed(sample, at)  # type: ignore[attr-defined]
    return engine


def in_chunks(samples: list[StatsSample], received_at: int | None, sizes: list[int]) -> Engine:
    engine = Engine()
    engine.events = []  # type: ignore[attr-defined]
    i = 0
    for size in sizes:
        engine.events += engine.feed_batch(samples[i : i + size], received_at)  # type: ignore[attr-defined]
        i += size
    engine.events += engine.feed_batch(samples[i:], received_at)  # type: ignore[attr-defined]
    return engine


def assert_same(a: Engine, b: Engine) -> None:
    assert msgspec.to_builtins(a.events) == msgspec.to_builtins(b.events)  # type: ignore[attr-defined]
    assert list(a.states) == list(b.states)
    assert {k: dump_state(v) for k, v in a.states.items()} == {
        k: dump_state(v) for k, v in b.states.items()
    }
    assert a.counts == b.counts


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    participants=st.integers(1, 10),
    sizes=st.lists(st.integers(0, 60), max_size=12),
)
def test_batches_of_any_size_equal_one_by_one(seed, participants, sizes):
    samples = random_stream(seed, participants, samples=250)
    single = one_by_one(samples, [None] * len(samples))
    batch = in_chunks(samples, None, sizes)
    assert_same(single, batch)
    assert single.counts.samples == len(samples)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 80))
def test_batches_with_a_receive_clock_equal_one_by_one(seed, size):
    """A consumer's own clock (one ``received_at`` per poll) drives staleness the same way."""
    samples = random_stream(seed, samples=240)
    rnd = random.Random(seed)
    batch = Engine()
    batch.events = []  # type: ignore[attr-defined]
    clocks: list[int | None] = []
    now = samples[0].timestamp
    for i in range(0, len(samples), size):
        now += rnd.choice([0, 500, 1_000, 15_000])
        chunk = samples[i : i + size]
        batch.events += batch.feed_batch(chunk, now)  # type: ignore[attr-defined]
        clocks += [now] * len(chunk)
    assert_same(one_by_one(samples, clocks), batch)


def test_a_long_seeded_stream_of_many_participants():
    samples = random_stream(20_251_123, participants=40, samples=4_000)
    single = one_by_one(samples, [None] * len(samples))
    batch = in_chunks(samples, None, [1, 7, 500, 1_000])
    assert_same(single, batch)
    assert single.counts.ignored > 0 and single.counts.departed > 0
    assert any(e.event_id.endswith(":stale") for e in single.events)  # type: ignore[attr-defined]
