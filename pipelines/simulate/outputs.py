"""Where simulated samples go: Kafka (the stats topic) or JSON lines (stdout or a file).

Kafka goes through the publisher library (``pipelines.clients.publisher.StatsPublisher``),
the same one an SFU would use.
"""

from __future__ import annotations

import threading
from typing import BinaryIO, Protocol

from pipelines.clients.publisher import PublishReport, StatsPublisher
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
    """Samples onto the stats topic through the publisher library (``StatsPublisher``).

    Samples go in batch envelopes grouped by partition, as an SFU using the library would send
    them (``envelope=False``: one message per sample). Remembers the highest acknowledged
    offset per partition, so a caller can tell when a consumer has read everything sent (the
    embedded broker's end offsets are not exact).
    """

    def __init__(self, settings: Settings, *, envelope: bool = True) -> None:
        if not settings.kafka_bootstrap_servers:
            raise ValueError("KafkaOutput needs resolved kafka_bootstrap_servers")
        self.topic = settings.topic_stats
        self.publisher = StatsPublisher.from_settings(
            settings, envelope=envelope, linger_ms=20, on_delivery=self._delivered
        )
        self._lock = threading.Lock()
        self.end_offsets: dict[int, int] = {}
        self.errors: list[str] = []

    def publish(self, sample: StatsSample) -> None:
        """Queue one sample (validated by the publisher; errors are collected in ``errors``)."""
        self.publisher.send(sample)

    def _delivered(self, metadata: object) -> None:
        partition, offset = metadata.partition, metadata.offset  # type: ignore[attr-defined]
        with self._lock:
            if offset + 1 > self.end_offsets.get(partition, 0):
                self.end_offsets[partition] = offset + 1

    def _collect(self, report: PublishReport) -> None:
        self.errors += [f"rejected sample {r.index}: {r.code}: {r.message}"
                        for r in report.rejected]
        self.errors += [f"{f.samples} samples not delivered: {f.error}" for f in report.failed]

    def flush(self) -> None:
        self._collect(self.publisher.flush())

    def close(self) -> None:
        self._collect(self.publisher.close())
