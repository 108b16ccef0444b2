"""Kafka's default partitioner (murmur2 of the key), compiled with the core.

The worker checks the partition of every sample it takes in (a participant's state must live
in the partition its key maps to). kafka-python's ``murmur2`` is pure Python, ~5 us per id,
so the worker used to remember every participant's partition: ~100 bytes per participant,
allocated among the samples' short-lived objects of the same sizes, whose freed blocks it
then kept from going back to the system (docs/performance.md, memory). Compiled, the hash
costs less than that dict's upkeep. The same arithmetic as kafka-python's
``kafka.partitioner.default.murmur2`` (Apache-2.0), after Java's
``org.apache.kafka.common.utils.Utils.murmur2``; a property test holds them equal. The one
partitioner of the project: the publisher's envelopes (``pipelines.clients.envelope``) use it.
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import i64

MASK32: Final = 0xFFFFFFFF
SEED: Final = 0x9747B28C
M: Final = 0x5BD1E995


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` as Kafka computes it (an unsigned 32-bit value).

    ``i64`` (a machine integer when compiled, a plain int otherwise): every product is of a
    value below 2**32 and ``M`` (below 2**31), so below 2**63; never an overflow."""
    length: i64 = len(data)
    h: i64 = (SEED ^ length) & MASK32
    end: i64 = length - length % 4
    k: i64
    for i4 in range(0, end, 4):
        k = i64(data[i4]) | (i64(data[i4 + 1]) << 8) | (i64(data[i4 + 2]) << 16)
        k |= i64(data[i4 + 3]) << 24
        k = (k * M) & MASK32
        k ^= k >> 24
        k = (k * M) & MASK32
        h = ((h * M) & MASK32) ^ k
    extra: i64 = length - end
    if extra >= 3:
        h ^= i64(data[end + 2]) << 16
    if extra >= 2:
        h ^= i64(data[end + 1]) << 8
    if extra >= 1:
        h ^= i64(data[end])
        h = (h * M) & MASK32
    h ^= h >> 13
    h = (h * M) & MASK32
    h ^= h >> 15
    return h


def default_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java, kafka-python, aiokafka, Faust) gives
    a keyed record."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
