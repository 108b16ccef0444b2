"""Keyed states with a bounded decoded cache: the engine over it behaves as over a dict.

The levels agent keeps only the most recently written participants decoded
(``keep_decoded``); the others live as msgpack bytes in the table and are decoded on their
next sample, and the sweep reads just ``seen_at``/``interval`` from those bytes (``scan`` with
``load_liveness``). Events and states must be exactly those of the plain engine.
"""

from __future__ import annotations

import asyncio

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.quality import Engine, ParticipantState, dump_state, load_state
from pipelines.quality.liveness import load_liveness
from pipelines.testing import random_stream
from pipelines.testing.stages import MemoryStates, RecordingEmitter

_LOOP = asyncio.new_event_loop()


def _flush(states: MemoryStates) -> None:
    _LOOP.run_until_complete(states.flush_batched(RecordingEmitter()))


def _by_participant(events: list) -> list:
    return sorted(msgspec.to_builtins(events), key=lambda e: (e["participantSid"], e["eventId"]))


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    keep=st.integers(0, 6),
    chunk=st.integers(1, 40),
    sweep_lag_s=st.sampled_from([0, 5, 12, 40, 400]),
)
def test_engine_over_a_bounded_cache_equals_the_plain_engine(seed, keep, chunk, sweep_lag_s):
    samples = random_stream(seed, participants=10, samples=240)
    plain = Engine(participant_ttl_s=60)
    stored = MemoryStates(
        dump_state, load_state, keep_decoded=keep, peek=load_liveness,
    )  # fmt: skip
    cached = Engine(states=stored, participant_ttl_s=60)
    for i in range(0, len(samples), chunk):
        batch = samples[i : i + chunk]
        assert msgspec.to_builtins(cached.feed_batch(batch)) == msgspec.to_builtins(
            plain.feed_batch(batch)
        )
        _flush(stored)
        assert len(stored._cache) <= keep
        now = max(s.timestamp for s in batch) + sweep_lag_s * 1000
        assert _by_participant(cached.sweep(now)) == _by_participant(plain.sweep(now))
        _flush(stored)
        assert len(stored._cache) <= keep
    assert sorted(stored) == sorted(plain.states)
    assert {k: dump_state(stored[k]) for k in stored} == {
        k: dump_state(v) for k, v in plain.states.items()
    }
    assert cached.counts == plain.counts


def test_scan_reads_seen_at_and_interval_without_decoding_the_state() -> None:
    samples = random_stream(7, participants=5, samples=60)
    engine = Engine()
    engine.feed_batch(samples)
    for state in engine.states.values():
        view = load_liveness(dump_state(state))
        assert (view.seen_at, view.interval, view.level) == (
            state.seen_at,
            state.interval,
            state.level,
        )
    stored = MemoryStates(
        dump_state, load_state, keep_decoded=0, peek=load_liveness,
    )  # fmt: skip
    for key, state in engine.states.items():
        stored[key] = state
    _flush(stored)
    assert stored._cache == {}
    scanned = dict(stored.scan())
    assert sorted(scanned) == sorted(engine.states)
    assert not any(isinstance(v, ParticipantState) for v in scanned.values())
    assert stored._cache == {}  # a scan decodes nothing into the cache
