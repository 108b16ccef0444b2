"""Encoding of ``netquality.stats.batch.v1`` envelopes: many samples in one Kafka message.

Pure (no I/O). The contract (see the lead's envelope note and ``schemas/``): a message on the
stats topic may carry ``{"schema": "netquality.stats.batch.v1", "samples": [...]}``, keyed by
the first sample's ``participantSid``; every sample in it belongs to the partition the envelope
is produced to (Kafka's default partitioner, murmur2 of the participantSid); at most 1,000
samples and 1 MiB encoded; a participant's samples keep their order. One Kafka message per
~1,000 samples instead of one per sample is what cuts the worker's per-event cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.quality.partitioner import default_partition

BATCH_SCHEMA = "netquality.stats.batch.v1"
MAX_ENVELOPE_SAMPLES = 1000
MAX_ENVELOPE_BYTES = 1024 * 1024
DEFAULT_ENVELOPE_BYTES = 1_000_000
"""The default cap stays a little under 1 MiB so that key and record overhead still fit a
broker's default ``message.max.bytes`` (1 MiB + 12 bytes)."""

_PREFIX = b'{"schema":"' + BATCH_SCHEMA.encode() + b'","samples":['
_SUFFIX = b"]}"
EMPTY_ENVELOPE_BYTES = len(_PREFIX) + len(_SUFFIX)


def partition_for(participant_sid: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives this key (murmur2, like Java, kafka-python,
    aiokafka and Faust): the worker's own, compiled with the core
    (:mod:`pipelines.quality.partitioner`), so a publisher and the worker cannot disagree."""
    return default_partition(participant_sid.encode("utf-8"), partitions)


def encode_envelope(samples: list[bytes]) -> bytes:
    """Join already-encoded samples (compact JSON objects) into one envelope."""
    return _PREFIX + b",".join(samples) + _SUFFIX


@dataclass
class EnvelopeBuffer:
    """Samples waiting for one partition, never more than one envelope's worth."""

    partition: int
    max_samples: int = MAX_ENVELOPE_SAMPLES
    max_bytes: int = DEFAULT_ENVELOPE_BYTES
    samples: list[bytes] = field(default_factory=list)
    participant_sids: list[str] = field(default_factory=list)
    size: int = EMPTY_ENVELOPE_BYTES
    opened_at: float = 0.0
    """Monotonic time of the first buffered sample (for linger)."""

    def fits(self, encoded: bytes) -> bool:
        """Whether one more sample keeps the envelope within both limits."""
        if not self.samples:
            return True
        extra = len(encoded) + 1  # the separating comma
        return len(self.samples) < self.max_samples and self.size + extra <= self.max_bytes

    def add(self, participant_sid: str, encoded: bytes, now: float) -> None:
        if not self.samples:
            self.opened_at = now
            self.size += len(encoded)
        else:
            self.size += len(encoded) + 1
        self.samples.append(encoded)
        self.participant_sids.append(participant_sid)

    @property
    def full(self) -> bool:
        return len(self.samples) >= self.max_samples

    def take(self) -> Envelope:
        """The buffered samples as one envelope; the buffer is left empty."""
        envelope = Envelope(
            partition=self.partition,
            key=self.participant_sids[0].encode("utf-8"),
            value=encode_envelope(self.samples),
            participant_sids=self.participant_sids,
        )
        self.samples = []
        self.participant_sids = []
        self.size = EMPTY_ENVELOPE_BYTES
        return envelope


@dataclass(frozen=True, slots=True)
class Envelope:
    """One Kafka message to produce: partition, key, value and who is inside."""

    partition: int
    key: bytes
    value: bytes
    participant_sids: list[str]

    @property
    def count(self) -> int:
        return len(self.participant_sids)


def pack_envelopes(
    samples: list[tuple[str, bytes]],
    partitions: int,
    *,
    max_samples: int = MAX_ENVELOPE_SAMPLES,
    max_bytes: int = DEFAULT_ENVELOPE_BYTES,
) -> list[Envelope]:
    """Group (participantSid, encoded sample) pairs into envelopes, partition by partition,
    keeping input order within each partition (so each participant's time order)."""
    buffers: dict[int, EnvelopeBuffer] = {}
    out: list[Envelope] = []
    for sid, encoded in samples:
        p = partition_for(sid, partitions)
        buffer = buffers.setdefault(p, EnvelopeBuffer(p, max_samples, max_bytes))
        if not buffer.fits(encoded):
            out.append(buffer.take())
        buffer.add(sid, encoded, 0.0)
    out.extend(b.take() for b in buffers.values() if b.samples)
    return out
