"""Bundles: many internal-topic records in one Kafka message, read back exactly."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.streaming.bundles import MAX_BUNDLE_BYTES, bundle, bundled, unbundle

objects = st.dictionaries(
    st.text(max_size=8),
    st.one_of(st.integers(), st.text(max_size=40), st.none(), st.lists(st.integers(), max_size=5)),
    max_size=6,
).map(lambda d: json.dumps(d, separators=(",", ":")).encode())


@given(st.lists(objects, max_size=60), st.integers(min_value=2, max_value=400))
def test_bundles_give_back_every_record_in_order_within_the_limit(values, limit):
    bundles = bundle(values, limit)
    assert [v for b in bundles for v in unbundle(b)] == values
    for b in bundles:
        assert len(b) <= limit or len(unbundle(b)) == 1  # only a lone large record exceeds it
        assert isinstance(json.loads(b), list)


def test_a_lone_record_reads_as_a_bundle_of_one():
    value = b'{"eventId":"P1:1","level":5}'
    assert unbundle(value) == [value]


def test_a_broken_bundle_raises_a_decode_error():
    with pytest.raises(msgspec.DecodeError):
        unbundle(b'[{"eventId":"P1:1"},')


def test_bundled_groups_by_partition_in_order_without_keys():
    items = [(1, b'{"a":1}'), (0, b'{"a":2}'), (1, b'{"a":3}')]
    records = bundled("t", items)
    assert [(t, p, k) for t, p, k, _ in records] == [("t", 1, None), ("t", 0, None)]
    assert unbundle(records[0][3]) == [b'{"a":1}', b'{"a":3}']
    assert unbundle(records[1][3]) == [b'{"a":2}']


def test_a_large_step_is_split_below_the_batch_size():
    values = [json.dumps({"i": i, "pad": "x" * 400}).encode() for i in range(2_000)]
    records = bundled("t", [(0, v) for v in values])
    assert len(records) > 1
    assert all(len(r[3]) <= MAX_BUNDLE_BYTES for r in records)
    assert [v for r in records for v in unbundle(r[3])] == values
