"""The shared commit-after-write loop (``pipelines.kafka.run_group``), without a broker: a
batch's offsets are committed only after its write succeeded, a transient failure is retried
with the batch held, and a stop while the writer still fails commits nothing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from pipelines.kafka import run_group
from pipelines.kafka.group import Polled, Records

TP = TopicPartition("levels", 0)


def _poll(first: int, count: int) -> Records:
    return {TP: [ConsumerRecord("levels", 0, o, 0, 0, None, b"v", None, 0, 1, [])
                 for o in range(first, first + count)]}  # fmt: skip


class Consumer:
    """Scripted polls; records commits and what had been written at each commit."""

    def __init__(self, polls: list[Records], written: list[int]) -> None:
        self.polls = polls
        self.written = written
        self.commits: list[tuple[dict[TopicPartition, int], int]] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> Records:
        await asyncio.sleep(0)
        return self.polls.pop(0) if self.polls else {}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append((dict(offsets), sum(self.written)))

    def highwater(self, tp: TopicPartition) -> int:
        return 100


@dataclass
class Batch(Polled):
    values: list[int] = field(default_factory=list)


class TransientError(Exception):
    pass


class Writer:
    service = "test"

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.written: list[int] = []
        self.committed_records = 0
        self.attempts = 0

    def new_batch(self) -> Batch:
        return Batch()

    async def gather(self, records: Records, batch: Batch) -> Batch:
        batch.add(records)
        batch.values.extend(r.offset for part in records.values() for r in part)
        return batch

    async def write(self, batch: Batch) -> None:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise TransientError("database down")
        self.written.append(len(batch.values))

    def retry_kind(self, exc: Exception) -> str | None:
        return "unavailable" if isinstance(exc, TransientError) else None

    def committed(self, batch: Batch) -> None:
        self.committed_records += batch.records


async def _run(writer: Writer, consumer: Consumer, stop_when) -> None:
    stop = asyncio.Event()

    async def stopper() -> None:
        while not stop_when():
            await asyncio.sleep(0.01)
        stop.set()

    task = asyncio.create_task(stopper())
    await asyncio.wait_for(
        run_group(consumer, writer, stop, max_batch=100, poll_ms=1, grow_poll_ms=1),  # type: ignore[arg-type]
        timeout=30,
    )
    task.cancel()


def test_offsets_are_committed_only_after_their_write() -> None:
    writer = Writer()
    consumer = Consumer([_poll(0, 3), {}, _poll(3, 2)], writer.written)
    asyncio.run(_run(writer, consumer, lambda: writer.committed_records == 5))
    assert sum(writer.written) == 5
    # Every commit saw at least the records it covers written already.
    for offsets, written_then in consumer.commits:
        assert written_then >= offsets[TP]
    assert consumer.commits[-1][0] == {TP: 5}


def test_a_transient_failure_is_retried_with_the_batch_held() -> None:
    writer = Writer(failures=2)
    consumer = Consumer([_poll(0, 4)], writer.written)
    asyncio.run(_run(writer, consumer, lambda: writer.committed_records == 4))
    assert writer.attempts == 3
    assert writer.written == [4]
    assert consumer.commits == [({TP: 4}, 4)]


def test_a_stop_while_the_writer_fails_commits_nothing() -> None:
    writer = Writer(failures=10**6)
    consumer = Consumer([_poll(0, 4)], writer.written)
    asyncio.run(_run(writer, consumer, lambda: writer.attempts >= 1))
    assert writer.written == []
    assert consumer.commits == []


def test_a_writer_error_that_is_not_transient_stops_the_loop() -> None:
    class Broken(Writer):
        def retry_kind(self, exc: Exception) -> str | None:
            return None

    writer = Broken(failures=1)
    consumer = Consumer([_poll(0, 2)], writer.written)
    with pytest.raises(TransientError):
        asyncio.run(_run(writer, consumer, lambda: False))
    assert consumer.commits == []
