"""Many records of an internal topic in one Kafka message: a JSON array of their JSON objects.

Each Kafka message a Faust agent reads costs ~100-200 us of Faust's own machinery (event,
stream, acknowledgement, commit bookkeeping), whatever the agent does with it. The level
events, room minutes and room summaries that the stages hand each other on internal topics
are small (~300-600 bytes) and many, so they travel *bundled*: all the records for one
partition of one step in as few messages as fit :data:`MAX_BUNDLE_BYTES`. A bundle is the
records' own JSON objects joined into a JSON array, so it needs no schema of its own, and a
reader takes a lone JSON object (what the stages wrote before bundling) as a bundle of one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator

import msgspec

from pipelines.streaming.stage import InputRecord, Record

log = logging.getLogger(__name__)

MAX_BUNDLE_BYTES = 192 * 1024
"""Below the producer's batch size (256 KiB, pipelines/streaming/faust/app.py), so a bundle always
fits one record batch; a single record larger than this still travels, alone."""

_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


def bundle(values: Iterable[bytes], limit: int = MAX_BUNDLE_BYTES) -> list[bytes]:
    """JSON arrays of ``values`` (each a JSON object), in order, each at most ``limit`` bytes
    unless one value alone is larger."""
    out: list[bytes] = []
    chunk: list[bytes] = []
    size = 2
    for value in values:
        if chunk and size + len(value) + 1 > limit:
            out.append(b"[" + b",".join(chunk) + b"]")
            chunk, size = [], 2
        chunk.append(value)
        size += len(value) + 1
    if chunk:
        out.append(b"[" + b",".join(chunk) + b"]")
    return out


def unbundle(value: bytes) -> list[bytes]:
    """The records of a bundle, or ``[value]`` for a lone record. Raises
    ``msgspec.DecodeError`` when a bundle is not a JSON array."""
    if value[:1] != b"[":
        return [value]
    return [bytes(raw) for raw in _raw_list.decode(value)]


def bundled(topic: str, items: Iterable[tuple[int, bytes]]) -> list[Record]:
    """Records for ``topic`` from (partition, value) pairs: one bundle per partition (more if
    large), each partition's values in their given order. Bundles carry no key: the stage
    reading them takes each record's key from its own fields."""
    by_partition: dict[int, list[bytes]] = {}
    for partition, value in items:
        by_partition.setdefault(partition, []).append(value)
    return [
        (topic, partition, None, payload)
        for partition, values in by_partition.items()
        for payload in bundle(values)
    ]


def records_of(records: Iterable[InputRecord], stage: str) -> Iterator[bytes]:
    """The records carried by a batch of internal-topic messages, bundled or alone;
    tombstones and undecodable bundles are skipped with a warning (only our own stages write
    these topics)."""
    for message in records:
        value = message.value
        if value is None:
            continue
        try:
            yield from unbundle(value)
        except msgspec.DecodeError as exc:
            log.warning(
                "%s: skipping an undecodable bundle at %s[%s]@%s: %s",
                stage, message.topic, message.partition, message.offset, exc,
            )  # fmt: skip
