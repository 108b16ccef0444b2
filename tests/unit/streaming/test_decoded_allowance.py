"""The decoded-state allowance: full while decoded states are read again, small while not.

At 100,000 participants taking turns, least-recently-written eviction never served a read
from the 16,384 decoded states it kept (~44 MB for nothing); a worker whose participants fit
must keep serving them decoded, and one that shrank must grow back when they fit again.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.quality import Engine, dump_state, load_state
from pipelines.streaming.decoded_allowance import DecodedAllowance
from pipelines.testing import random_stream
from pipelines.testing.stages import MemoryStates, RecordingEmitter

_LOOP = asyncio.new_event_loop()


class _CountingLoad:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, data: bytes):
        self.calls += 1
        return load_state(data)


def _states(keep: int) -> tuple[MemoryStates, _CountingLoad]:
    load = _CountingLoad()
    states = MemoryStates(dump_state, load, keep_decoded=keep)
    return states, load


def _touch(states: MemoryStates, keys: list[str], seed_state) -> None:
    """What the engine does with each sample: read the participant's state, write it back."""
    for key in keys:
        st_ = states.get(key)
        states[key] = seed_state if st_ is None else st_
    _LOOP.run_until_complete(states.flush_batched(RecordingEmitter()))


def _send(states: MemoryStates, keys: list[str], state, rounds: int = 1, per: int = 8) -> None:
    """``rounds`` passes of every key, ``per`` of them per batch (one flush each)."""
    for _ in range(rounds):
        for i in range(0, len(keys), per):
            _touch(states, keys[i : i + per], state)


def _after_a_storm(participants: int):
    """A table of ``keep=64`` after one sample each of ``participants`` new participants."""
    states, load = _states(keep=64)
    state = _a_state()
    keys = [f"storm{i}" for i in range(participants)]
    _send(states, keys, state, per=10)
    return states, load, state, keys


def _a_state():
    engine = Engine()
    engine.feed_batch(random_stream(3, participants=1, samples=3))
    return next(iter(engine.states.values()))


def test_participants_that_fit_stay_decoded_and_are_never_decoded_again() -> None:
    states, load = _states(keep=64)
    keys = [f"p{i}" for i in range(48)]
    state = _a_state()
    _send(states, keys, state, rounds=20)
    assert states.allowance.limit == 64
    assert len(states._cache) == 48
    assert load.calls == 0


def test_participants_taking_turns_beyond_the_allowance_shrink_it_to_the_floor() -> None:
    states, load = _states(keep=64)  # floor 4, window 16
    keys = [f"p{i}" for i in range(200)]
    state = _a_state()
    _send(states, keys, state, rounds=3)
    assert states.allowance.limit == 4
    assert len(states._cache) <= 4
    assert load.calls > 300  # every read after the first round decoded (as before the change)


def test_a_join_storm_of_one_sample_each_keeps_only_the_floor_decoded() -> None:
    states, _, state, keys = _after_a_storm(1000)
    assert states.allowance.limit == 4
    assert len(states._cache) <= 4
    assert sorted(states) == sorted(keys)
    assert all(dump_state(states[k]) == dump_state(state) for k in keys[::97])


def test_a_shrunk_allowance_grows_back_when_the_participants_fit_again() -> None:
    states, load, state, _ = _after_a_storm(500)
    assert states.allowance.limit == 4
    steady = [f"p{i}" for i in range(40)]
    _send(states, steady, state, rounds=6)
    assert states.allowance.limit == 64
    before = load.calls
    _send(states, steady, state)
    assert load.calls == before  # served decoded again
    assert states._evicted_keys == {}  # nothing remembered at full size


def test_deleted_participants_are_not_remembered() -> None:
    states, _, _, keys = _after_a_storm(300)
    assert states._evicted_keys
    for key in keys:
        del states[key]
    _LOOP.run_until_complete(states.flush_batched(RecordingEmitter()))
    assert states._evicted_keys == {}
    assert states._cache == {}
    assert list(states) == []


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        DecodedAllowance(full=10, floor=11, window=1)
    with pytest.raises(ValueError):
        DecodedAllowance(full=10, floor=1, window=0)


@settings(max_examples=200, deadline=None)
@given(
    full=st.integers(0, 64),
    rounds=st.lists(
        st.tuples(st.integers(0, 200), st.integers(0, 200), st.integers(0, 200),
                  st.integers(0, 200)),
        max_size=30,
    ),
)  # fmt: skip
def test_the_limit_is_always_full_or_floor_and_moves_only_on_a_windows_evidence(full, rounds):
    allowance = DecodedAllowance.for_states(full)
    for hits, evicted, decoded, reread in rounds:
        before = allowance.limit
        allowance.hits += hits
        allowance.evicted += evicted
        allowance.decoded += decoded
        allowance.would_hit += min(reread, decoded)
        seen = (allowance.hits, allowance.evicted, allowance.decoded, allowance.would_hit)
        limit = allowance.review()
        assert limit in (allowance.full, allowance.floor)
        if limit != before:
            if before == allowance.full:  # shrank: a window of evictions that were not re-read
                assert seen[1] >= allowance.window
                assert seen[0] < allowance.min_hit_share * seen[1]
            else:  # grew: a window of decodes the full size would have served
                assert seen[2] >= allowance.window
                assert seen[3] >= allowance.regrow_share * seen[2]
            assert (allowance.hits, allowance.evicted, allowance.decoded) == (0, 0, 0)
