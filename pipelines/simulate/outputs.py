"""Where simulated samples go: Kafka (the stats topic) or JSON lines (stdout or a file).

The one Kafka call is :meth:`KafkaOutput.publish`; when the shared publisher library
(``pipelines.clients.publisher.StatsPublisher``) lands, that method is the single place to swap.
"""

from __future__ import annotations

import threading
from typing import BinaryIO, Protocol

from kafka import KafkaProducer

from pipelines.config import Settings
from pipelines.contracts.codec import encode
from pipelines.contracts.stats import StatsSample


class SampleOutput(Protocol):
    """Anything the simulation can hand samples to."""

    def publish(self, sample: StatsSample) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class JsonLinesOutput:
    """One ``netquality.stats.v1`` JSON document per line (what ``netquality score`` reads)."""

    def __init__(self, stream: BinaryIO, *, owns: bool = False) -> None:
        self.stream = stream
        self.owns = owns

    def publish(self, sample: StatsSample) -> None:
        self.stream.write(encode(sample) + b"\n")

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.flush()
        if self.owns:
            self.stream.close()


class KafkaOutput:
    """One message per sample on the stats topic, keyed by participantSid (kafka-python).

    Remembers the highest acknowledged offset per partition, so a caller can tell when a
    consumer has read everything sent (the embedded broker's end offsets are not exact).
    """

    def __init__(self, settings: Settings) -> None:
        if not settings.kafka_bootstrap_servers:
            raise ValueError("KafkaOutput needs resolved kafka_bootstrap_servers")
        self.topic = settings.topic_stats
        self.producer = KafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=20, acks=1,
            enable_idempotence=False,
        )
        self._lock = threading.Lock()
        self.end_offsets: dict[int, int] = {}
        self.errors: list[str] = []

    def publish(self, sample: StatsSample) -> None:
        """Send one sample (asynchronously; delivery errors are collected in ``errors``).

        Merge note: swap this body for ``StatsPublisher.publish`` once it exists.
        """
        future = self.producer.send(
            self.topic, key=sample.participant_sid.encode(), value=encode(sample)
        )
        future.add_callback(self._delivered)
        future.add_errback(lambda exc: self.errors.append(str(exc)))

    def _delivered(self, metadata: object) -> None:
        partition, offset = metadata.partition, metadata.offset  # type: ignore[attr-defined]
        with self._lock:
            if offset + 1 > self.end_offsets.get(partition, 0):
                self.end_offsets[partition] = offset + 1

    def flush(self) -> None:
        self.producer.flush(timeout=30)

    def close(self) -> None:
        self.flush()
        self.producer.close(timeout=10)
