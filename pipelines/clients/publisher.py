"""``StatsPublisher``: how an SFU or a signalling server publishes stats samples to Kafka.

A small, blocking, thread-safe API over kafka-python::

    with StatsPublisher("kafka:9092") as publisher:
        publisher.send(sample)            # dict, StatsSample or raw JSON bytes
        report = publisher.flush()        # sent / rejected (with reasons) / failed (with errors)

Every sample is validated with the project's own decoder before it is sent, so a bad sample
is refused at the source with the reason the worker would have given, instead of becoming a
dead letter later. Samples are keyed by ``participantSid``. With ``envelope=True`` (default)
they are grouped per partition into ``netquality.stats.batch.v1`` envelopes (see
:mod:`pipelines.clients.envelope`); with ``envelope=False`` each sample is its own message.
Delivery errors are collected and returned by :meth:`flush`, never swallowed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Self

import msgspec
from kafka.errors import KafkaError

from pipelines.clients.envelope import (
    DEFAULT_ENVELOPE_BYTES,
    MAX_ENVELOPE_BYTES,
    MAX_ENVELOPE_SAMPLES,
    Envelope,
    EnvelopeBuffer,
    partition_for,
)
from pipelines.contracts import ContractError, StatsSample, decode_stats, encode
from pipelines.security import kafka_client_config

if TYPE_CHECKING:
    from kafka import KafkaProducer

    from pipelines.config import Settings

log = logging.getLogger(__name__)

SampleInput = Mapping[str, Any] | StatsSample | bytes | bytearray | memoryview | str
"""What :meth:`StatsPublisher.send` accepts: a JSON object as a dict, a model, or raw JSON."""

DEFAULT_TOPIC = "netquality.stats.v1"


class InvalidSampleError(ContractError):
    """Raised by ``send`` (with ``on_invalid="raise"``) for a sample the contract rejects."""

    def __init__(self, code: str, message: str, index: int) -> None:
        super().__init__(code, message)
        self.index = index

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.message, self.index))

    def __str__(self) -> str:
        return f"sample #{self.index} rejected: {self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A sample refused before sending: its running index and the contract's reason."""

    index: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """A Kafka message the broker did not acknowledge; ``samples`` it carried are lost."""

    samples: int
    participant_sids: tuple[str, ...]
    error: str


@dataclass
class PublishReport:
    """What happened since the previous :meth:`StatsPublisher.flush`."""

    sent: int = 0
    """Samples the broker acknowledged."""
    messages: int = 0
    """Kafka messages acknowledged (envelopes, or single samples)."""
    rejected: list[Rejection] = field(default_factory=list)
    failed: list[DeliveryFailure] = field(default_factory=list)

    @property
    def failed_samples(self) -> int:
        return sum(f.samples for f in self.failed)

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.failed

    def rejected_by_code(self) -> dict[str, int]:
        return dict(Counter(r.code for r in self.rejected))

    def merge(self, other: PublishReport) -> None:
        self.sent += other.sent
        self.messages += other.messages
        self.rejected.extend(other.rejected)
        self.failed.extend(other.failed)


@dataclass(slots=True)
class _InFlight:
    future: Any  # kafka.producer.future.FutureRecordMetadata
    participant_sids: tuple[str, ...]


_dict_encoder = msgspec.json.Encoder()


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    name, text = type(exc).__name__, str(exc)
    return text if text.startswith(name) else f"{name}: {text}"  # kafka errors name themselves


def validate_sample(sample: SampleInput) -> StatsSample:
    """Decode and validate one sample with the project's decoder; raises ``ContractError``.

    Dicts and models are encoded to JSON and decoded again, so they meet exactly the checks
    (and error messages) the worker applies to bytes from the topic; a model built in code is
    not validated by its constructor.
    """
    return validated_json(sample)[0]


def validated_json(sample: SampleInput) -> tuple[StatsSample, bytes]:
    """The validated sample and the JSON it was validated from (sent as is: no re-encoding)."""
    if isinstance(sample, bytes | bytearray | memoryview):
        data = bytes(sample).strip()
    elif isinstance(sample, str):
        data = sample.strip().encode("utf-8")
    elif isinstance(sample, StatsSample):
        data = encode(sample)
    elif isinstance(sample, Mapping):
        try:
            data = _dict_encoder.encode(sample)
        except (TypeError, msgspec.EncodeError) as exc:
            raise ContractError("invalid_json", f"not JSON-serialisable: {exc}") from None
    else:
        raise ContractError(
            "invalid_json",
            f"expected a dict, a StatsSample or JSON bytes, got {type(sample).__name__}",
        )
    return decode_stats(data), data


class StatsPublisher:
    """Publishes validated ``netquality.stats.v1`` samples to Kafka, keyed by participant.

    ``kafka_config`` goes to :class:`kafka.KafkaProducer` as is: security settings
    (``security_protocol``, ``sasl_mechanism``, ``sasl_plain_username``, ``ssl_cafile``, ...),
    ``client_id``, ``acks``... ``linger_ms`` is how long a sample may wait for companions in
    its envelope (and kafka-python's own linger). ``on_invalid="raise"`` makes :meth:`send`
    raise :class:`InvalidSampleError`; the default records the rejection for :meth:`flush`.
    ``on_delivery`` is called (on kafka-python's I/O thread) with the ``RecordMetadata`` of
    each acknowledged message, for callers that track offsets.
    """

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        topic: str = DEFAULT_TOPIC,
        *,
        envelope: bool = True,
        max_batch: int = MAX_ENVELOPE_SAMPLES,
        max_batch_bytes: int = DEFAULT_ENVELOPE_BYTES,
        linger_ms: int = 50,
        on_invalid: Literal["record", "raise"] = "record",
        flush_timeout_s: float = 30.0,
        on_delivery: Callable[[Any], None] | None = None,
        **kafka_config: Any,
    ) -> None:
        if not 1 <= max_batch <= MAX_ENVELOPE_SAMPLES:
            raise ValueError(f"max_batch must be 1..{MAX_ENVELOPE_SAMPLES}, got {max_batch}")
        if not 1024 <= max_batch_bytes <= MAX_ENVELOPE_BYTES:
            raise ValueError(
                f"max_batch_bytes must be 1024..{MAX_ENVELOPE_BYTES}, got {max_batch_bytes}"
            )
        if on_invalid not in ("record", "raise"):
            raise ValueError("on_invalid must be 'record' or 'raise'")
        from kafka import KafkaProducer  # noqa: PLC0415 (import cost only when used)

        self.topic = topic
        self.envelope = envelope
        self.max_batch = max_batch
        self.max_batch_bytes = max_batch_bytes
        self.linger_s = max(linger_ms, 0) / 1000
        self.on_invalid = on_invalid
        self.flush_timeout_s = flush_timeout_s
        self._on_delivery = on_delivery
        config: dict[str, Any] = {"acks": "all", "linger_ms": linger_ms, **kafka_config}
        # An envelope of up to 1 MiB plus record overhead must pass the client-side check.
        config.setdefault("max_request_size", MAX_ENVELOPE_BYTES + 64 * 1024)
        self._producer: KafkaProducer = KafkaProducer(
            bootstrap_servers=bootstrap_servers, **config
        )
        self._lock = threading.RLock()
        self._buffers: dict[int, EnvelopeBuffer] = {}
        self._in_flight: list[_InFlight] = []
        self._report = PublishReport()
        self._index = 0
        self._partitions: int | None = None
        self._partition_of: dict[str, int] = {}
        self._closed = False
        self.final_report: PublishReport | None = None
        """The report of the flush inside :meth:`close` (handy after a ``with`` block)."""
        self._stop = threading.Event()
        self._linger_thread: threading.Thread | None = None
        if envelope:
            self._linger_thread = threading.Thread(
                target=self._linger_loop, name="netquality-publisher-linger", daemon=True
            )
            self._linger_thread.start()

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> StatsPublisher:
        """A publisher for the configured brokers and stats topic."""
        if not settings.kafka_bootstrap_servers:
            raise ValueError(
                "KAFKA_BOOTSTRAP_SERVERS is unset: a publisher needs a running broker "
                "(start one, or use pipelines.runtime.Runtime for the embedded one)"
            )
        overrides.setdefault("topic", settings.topic_stats)
        return cls(
            settings.kafka_bootstrap_servers, **{**kafka_client_config(settings), **overrides}
        )

    # --- sending ---------------------------------------------------------------------------

    def send(self, sample: SampleInput) -> bool:
        """Validate one sample and queue it; ``True`` if queued for delivery.

        ``False`` if the contract rejected it, or if Kafka refused it at once (no metadata
        within ``max_block_ms``); either way the reason is in the next :meth:`flush` report.
        Blocks only while kafka-python waits for metadata or buffer space (``max_block_ms``).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the publisher is closed")
            index = self._index
            self._index += 1
            try:
                parsed, encoded = validated_json(sample)
            except ContractError as exc:
                if self.on_invalid == "raise":
                    raise InvalidSampleError(exc.code, exc.message, index) from None
                self._report.rejected.append(Rejection(index, exc.code, exc.message))
                return False
            sid = parsed.participant_sid
            try:
                if not self.envelope:
                    self._send(sid.encode("utf-8"), encoded, None, (sid,))
                else:
                    self._buffer(sid, encoded)
            except KafkaError as exc:  # no metadata (broker unreachable, unknown topic)
                self._report.failed.append(DeliveryFailure(1, (sid,), _describe(exc)))
                return False
            self._collect_done()
            return True

    def _buffer(self, sid: str, encoded: bytes) -> None:
        partition = self._partition_of.get(sid)
        if partition is None:
            if len(self._partition_of) >= 100_000:  # participants come and go; stay bounded
                self._partition_of.clear()
            partition = self._partition_of[sid] = partition_for(sid, self._partition_count())
        buffer = self._buffers.get(partition)
        if buffer is None:
            buffer = self._buffers[partition] = EnvelopeBuffer(
                partition, self.max_batch, self.max_batch_bytes
            )
        if not buffer.fits(encoded):
            self._produce(buffer.take())
        buffer.add(sid, encoded, time.monotonic())
        if buffer.full:
            self._produce(buffer.take())

    def _partition_count(self) -> int:
        if self._partitions is None:
            partitions = self._producer.partitions_for(self.topic)
            if not partitions:
                raise KafkaError(f"topic {self.topic!r} has no partitions (does it exist?)")
            self._partitions = len(partitions)
        return self._partitions

    def _produce(self, envelope: Envelope) -> None:
        sids = tuple(envelope.participant_sids)
        try:
            self._send(envelope.key, envelope.value, envelope.partition, sids)
        except KafkaError as exc:
            self._report.failed.append(
                DeliveryFailure(len(sids), tuple(sorted(set(sids))), _describe(exc))
            )

    def _send(
        self, key: bytes, value: bytes, partition: int | None, sids: tuple[str, ...]
    ) -> None:
        future = self._producer.send(self.topic, key=key, value=value, partition=partition)
        if self._on_delivery is not None:
            future.add_callback(self._on_delivery)
        self._in_flight.append(_InFlight(future, sids))

    def _emit_lingering(self, *, all_buffers: bool) -> None:
        deadline = time.monotonic() - self.linger_s
        for buffer in self._buffers.values():
            if buffer.samples and (all_buffers or buffer.opened_at <= deadline):
                self._produce(buffer.take())

    def _linger_loop(self) -> None:
        interval = max(self.linger_s / 2, 0.005)
        while not self._stop.wait(interval):
            with self._lock:
                if self._closed:
                    return
                try:
                    self._emit_lingering(all_buffers=False)
                except Exception:  # surfaced again by flush(), which emits the same buffers
                    log.exception("emitting lingering envelopes failed")

    # --- results ---------------------------------------------------------------------------

    def _collect_done(self) -> None:
        """Move finished deliveries into the report (keeps the in-flight list short)."""
        if len(self._in_flight) < 1024:
            return
        pending: list[_InFlight] = []
        for item in self._in_flight:
            if item.future.is_done:
                self._settle(item, self._report)
            else:
                pending.append(item)
        self._in_flight = pending

    @staticmethod
    def _settle(item: _InFlight, report: PublishReport, timed_out: bool = False) -> None:
        if item.future.is_done and item.future.succeeded():
            report.sent += len(item.participant_sids)
            report.messages += 1
            return
        error = (
            "not acknowledged by the broker before the flush timeout"
            if timed_out and not item.future.is_done
            else _describe(item.future.exception)
        )
        report.failed.append(
            DeliveryFailure(
                len(item.participant_sids), tuple(sorted(set(item.participant_sids))), error
            )
        )

    def flush(self, timeout_s: float | None = None) -> PublishReport:
        """Send everything buffered, wait for the broker, and report since the last flush."""
        timeout = self.flush_timeout_s if timeout_s is None else timeout_s
        with self._lock:
            if self.envelope:
                self._emit_lingering(all_buffers=True)
            in_flight, self._in_flight = self._in_flight, []
            report, self._report = self._report, PublishReport()
        timed_out = False
        try:
            self._producer.flush(timeout=timeout)
        except Exception as exc:  # KafkaTimeoutError: unfinished futures are reported below
            log.warning("flush did not complete: %s", exc)
            timed_out = True
        for item in in_flight:
            self._settle(item, report, timed_out=timed_out)
        return report

    def close(self, timeout_s: float | None = None) -> PublishReport:
        """Flush, then close the producer; returns the final report."""
        if self._closed:
            return PublishReport()
        report = self.flush(timeout_s)
        self.final_report = report
        with self._lock:
            self._closed = True
        self._stop.set()
        if self._linger_thread is not None:
            self._linger_thread.join(timeout=5)
        self._producer.close(timeout=5)
        return report

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
