"""Exact-size msgpack for table values: the same bytes as msgspec's, in smaller objects."""

from __future__ import annotations

import threading
import tracemalloc

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.harness.inputs import bench_samples
from pipelines.quality import Engine, dump_state, load_state, load_thresholds
from pipelines.quality.packing import KEEP_BUFFER_BYTES, ExactEncoder, dump_state_exact

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(), inner, max_size=8),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_the_same_bytes_as_msgspec(value) -> None:
    assert ExactEncoder().encode(value) == msgspec.msgpack.encode(value)


def test_participant_states_encode_alike_in_smaller_objects() -> None:
    states: dict = {}
    engine = Engine(load_thresholds(None), states)
    samples = bench_samples(400, 400, 7)
    engine.feed_batch(samples, received_at=[s.timestamp for s in samples])
    for state in states.values():
        assert dump_state_exact(state) == dump_state(state)
        assert load_state(dump_state_exact(state)) == state
    # ~340-byte states: msgspec's own bytes keep its 512-byte write buffer's block.
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        plain = [dump_state(s) for s in states.values()]
        plain_bytes = tracemalloc.get_traced_memory()[0] - before
        before = tracemalloc.get_traced_memory()[0]
        exact = [dump_state_exact(s) for s in states.values()]
        exact_bytes = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert plain == exact
    assert exact_bytes < plain_bytes * 0.95


def test_threads_do_not_share_a_buffer() -> None:
    encoder = ExactEncoder()
    wrong: list[int] = []

    def run(n: int) -> None:
        value = {"n": n, "pad": "x" * (n % 700)}
        for _ in range(2000):
            if encoder.encode(value) != msgspec.msgpack.encode(value):
                wrong.append(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


def test_a_buffer_grown_by_a_huge_value_is_dropped() -> None:
    encoder = ExactEncoder()
    huge = b"x" * (KEEP_BUFFER_BYTES + 10)
    assert encoder.encode(huge) == msgspec.msgpack.encode(huge)
    assert encoder._local.buf is None
    assert encoder.encode(1) == msgspec.msgpack.encode(1)
    assert encoder._local.buf is not None
