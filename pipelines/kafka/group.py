"""The commit-after-write group loop: consume a batch, write it, then commit its offsets.

Shared by the sink (batches -> Postgres) and the notifier (alerts -> webhooks). Per batch:

1. poll records and hand them to the writer's ``gather`` (it decodes them into its batch);
2. write the batch (``write``, in a task); an error the writer calls transient (its database
   down, say) pauses and retries the same batch with backoff, forever, holding its offsets;
3. commit the batch's own offsets (not the consumer's position), only after its write (and
   every earlier one) has succeeded; a partition revoked meanwhile is left to its new owner,
   which replays those records: writers must be idempotent (at least once).

While one batch is being written the next one grows by the polls that arrive meanwhile (up to
``max_batch`` records), so polling and decoding overlap the write; writes stay strictly in
order, one at a time. On ``stop`` the batch being written is finished and committed (unless its
writer is still failing: then nothing is committed) and the loop returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError

from pipelines.observability import METRICS

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0

Records = dict[TopicPartition, list[ConsumerRecord]]


@dataclass
class Polled:
    """What a batch must carry for the loop: the offsets to commit once it is written."""

    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    """Next offset per partition once this batch is written: what to commit after it."""
    records: int = 0

    def add(self, records: Records) -> None:
        """Note a poll's offsets (later polls of a partition only bring newer records)."""
        self.offsets.update({tp: batch[-1].offset + 1 for tp, batch in records.items() if batch})
        self.records += sum(len(batch) for batch in records.values())


B = TypeVar("B", bound=Polled)


class GroupWriter(Protocol[B]):
    """What the loop hands batches to."""

    service: str
    """The ``service`` label of the loop's metrics and logs (``sink``, ``notify``)."""

    def new_batch(self) -> B: ...

    async def gather(self, records: Records, batch: B) -> B:
        """Add a poll to ``batch`` (calling ``batch.add(records)``); returns it."""
        ...

    async def write(self, batch: B) -> None:
        """Store or deliver the batch; raise to fail it (see ``retry_kind``)."""
        ...

    def retry_kind(self, exc: Exception) -> str | None:
        """The error kind (a metrics label) when ``exc`` is worth retrying; None re-raises."""
        ...

    def committed(self, batch: B) -> None:
        """The batch's offsets are committed (counts, logs)."""
        ...


@dataclass
class _InFlight(Generic[B]):
    batch: B
    write: asyncio.Task[bool]


async def run_group(
    consumer: AIOKafkaConsumer,
    writer: GroupWriter[B],
    stop: asyncio.Event,
    *,
    max_batch: int,
    poll_ms: int,
    grow_poll_ms: int,
) -> None:
    """Consume until ``stop`` is set (the consumer is started and stopped by the caller)."""
    in_flight: _InFlight[B] | None = None
    pending: B | None = None
    try:
        while not stop.is_set() or in_flight is not None:
            if not stop.is_set() and (pending is None or pending.records < max_batch):
                # Wait for records even with a write in flight: during a backlog the next
                # fetch lands while the writer works (a 0 timeout found nothing fetched yet,
                # and fetching, decoding and writing took turns). With a batch already
                # waiting, only briefly: the write may end any moment.
                records = await consumer.getmany(
                    timeout_ms=poll_ms if pending is None else grow_poll_ms,
                    max_records=max_batch - (0 if pending is None else pending.records),
                )
                if records:
                    pending = await writer.gather(records, pending or writer.new_batch())
            if in_flight is not None:
                if not in_flight.write.done() and pending is not None and (
                    pending.records < max_batch and not stop.is_set()
                ):
                    continue  # the writer is busy: grow the next batch meanwhile
                done, in_flight = in_flight, None
                if not await done.write:
                    break  # stopped while the writer was failing: commit nothing
                await commit_written(consumer, done.batch.offsets, writer.service)
                _lag(consumer, done.batch.offsets, writer.service)
                writer.committed(done.batch)
            if pending is not None and not stop.is_set():
                write = asyncio.create_task(_write_until_done(writer, pending, stop))
                in_flight, pending = _InFlight(pending, write), None
                # Let the task start the write now: getmany() may return without yielding
                # to the loop, and then the write would only start once awaited, after the
                # next batch's decoding instead of during it.
                await asyncio.sleep(0)
    finally:
        if in_flight is not None:  # failing elsewhere: let the write end, commit nothing
            with contextlib.suppress(BaseException):
                await in_flight.write


async def _write_until_done(writer: GroupWriter[B], batch: B, stop: asyncio.Event) -> bool:
    """Write, retrying transient failures with backoff; False when stopped while failing."""
    delay = BACKOFF_START_S
    while True:
        try:
            await writer.write(batch)
            return True
        except Exception as exc:
            kind = writer.retry_kind(exc)
            if kind is None:
                raise
            METRICS.errors.labels(service=writer.service, kind=kind).inc()
            log.warning("%s: %s (%s); retrying in %.1fs", writer.service, kind.replace("_", " "),
                        exc, delay)  # fmt: skip
            if stop.is_set():
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX_S)


async def commit_written(
    consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], service: str
) -> bool:
    """Commit a written batch's offsets; False when a rebalance took some of them away.

    A partition revoked while its batch was being written cannot be committed by us
    (aiokafka refuses it, or the group has moved on): its new owner reads those records
    again and writes them again, which changes nothing (the writers are idempotent). That
    is a replay, not a reason to crash; the rest of the batch is committed."""
    assigned = consumer.assignment()
    ours = {tp: offset for tp, offset in offsets.items() if tp in assigned}
    try:
        if ours:
            await consumer.commit(ours)
    except CommitFailedError as exc:
        log.warning("offsets not committed, the group rebalanced (%s): they are replayed", exc)
        METRICS.errors.labels(service=service, kind="commit_after_rebalance").inc()
        return False
    if len(ours) < len(offsets):
        left = len(offsets) - len(ours)
        log.info("%d revoked partitions' offsets left to their new owner", left)
        METRICS.errors.labels(service=service, kind="commit_after_rebalance").inc()
        return False
    return True


def _lag(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int], service: str) -> None:
    for tp, offset in offsets.items():
        highwater = consumer.highwater(tp)
        if highwater is not None:
            METRICS.consumer_lag.labels(
                service=service, topic=tp.topic, partition=str(tp.partition)
            ).set(max(highwater - offset, 0))
