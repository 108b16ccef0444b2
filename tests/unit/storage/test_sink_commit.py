"""The sink commits a written batch's offsets without crashing when a rebalance took some of
its partitions away: those records are replayed by their new owner (idempotent merges)."""

import asyncio

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from pipelines.kafka import commit_written
from pipelines.observability import METRICS

A, B = TopicPartition("levels", 0), TopicPartition("levels", 1)


class Consumer:
    def __init__(self, assigned: set[TopicPartition], fail: bool = False) -> None:
        self.assigned = assigned
        self.fail = fail
        self.committed: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.fail:
            raise CommitFailedError("the group has already rebalanced")
        if set(offsets) - self.assigned:  # what aiokafka does (IllegalStateError)
            raise AssertionError("committed a partition that is not assigned")
        self.committed.append(dict(offsets))


def _count() -> float:
    return METRICS.errors.labels(service="sink", kind="commit_after_rebalance")._value.get()


def test_offsets_of_assigned_partitions_are_committed() -> None:
    consumer = Consumer({A, B})
    assert asyncio.run(commit_written(consumer, {A: 10, B: 7}, "sink"))  # type: ignore[arg-type]
    assert consumer.committed == [{A: 10, B: 7}]


def test_a_revoked_partition_is_left_to_its_new_owner() -> None:
    before = _count()
    consumer = Consumer({B})
    assert not asyncio.run(commit_written(consumer, {A: 10, B: 7}, "sink"))  # type: ignore[arg-type]
    assert consumer.committed == [{B: 7}]
    assert _count() == before + 1


def test_a_commit_refused_after_a_rebalance_does_not_raise() -> None:
    before = _count()
    consumer = Consumer({A, B}, fail=True)
    assert not asyncio.run(commit_written(consumer, {A: 10}, "sink"))  # type: ignore[arg-type]
    assert consumer.committed == []
    assert _count() == before + 1
