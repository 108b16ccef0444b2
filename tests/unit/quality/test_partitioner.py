"""The compiled partitioner is Kafka's: the same murmur2 as kafka-python's (itself checked
against Java's), so a participant's samples, its state's changelog records and a publisher's
envelopes all land in the same partition. It is the only one: the publisher's envelopes
(``pipelines.clients.envelope.partition_for``) use it too."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_murmur2

from pipelines.clients.envelope import partition_for
from pipelines.quality.partitioner import default_partition, murmur2
from pipelines.streaming.levels import PartitionOf


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=80))
def test_murmur2_is_kafka_pythons(data: bytes) -> None:
    assert murmur2(data) == kafka_murmur2(data) & 0xFFFFFFFF


@settings(max_examples=300, deadline=None)
@given(sid=st.text(min_size=1, max_size=64), partitions=st.integers(1, 512))
def test_partition_of_is_kafkas_default_partitioner(sid: str, partitions: int) -> None:
    key = sid.encode()
    expected = (kafka_murmur2(key) & 0x7FFFFFFF) % partitions
    partition_of = PartitionOf(partitions)
    assert default_partition(key, partitions) == expected
    assert partition_of(sid) == expected
    assert partition_of.of_key(key) == expected
    assert partition_for(sid, partitions) == expected


@pytest.mark.parametrize(
    ("key", "partition"),
    [(b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742)],
)
def test_javas_partitions(key: bytes, partition: int) -> None:
    """What Java's default partitioner gives these keys over 1,000 partitions (the values
    kafka-python's own compatibility test holds it to)."""
    assert default_partition(key, 1000) == partition
    if key.isascii():
        assert partition_for(key.decode(), 1000) == partition
