"""Decoded contract messages stay out of the cyclic garbage collector (see
``pipelines/contracts/__init__.py``): a struct that the GC tracks again would quietly bring
back its cost on every decoded sample, so this is checked, not assumed."""

import gc
import inspect

import msgspec

from benchmarks.harness.inputs import bench_samples, envelopes
from pipelines import contracts
from pipelines.contracts import decode_stats_message


def test_every_contract_struct_is_declared_untracked() -> None:
    structs = [
        obj
        for obj in vars(contracts).values()
        if inspect.isclass(obj) and issubclass(obj, msgspec.Struct)
    ]
    assert len(structs) >= 15
    tracked = [s.__name__ for s in structs if s.__struct_config__.gc]
    assert tracked == []


def test_a_decoded_envelope_leaves_no_tracked_struct() -> None:
    samples = bench_samples(40, 10, seed=3)
    (_, _, value, count), *_ = envelopes(samples, 1)
    decoded = decode_stats_message(value)
    assert len(decoded.samples) == count == 40
    for sample in decoded.samples:
        assert not gc.is_tracked(sample)
        for track in (*sample.outbound, *sample.inbound):
            assert not gc.is_tracked(track)
