"""ChangelogStates.flush_batched: changelog first, then the store; nothing lost on failure."""

import asyncio

import pytest
from faust.stores.memory import Store as MemoryStore
from pipelines.streaming.stage import Delivered
from pipelines.streaming.faust.states import ChangelogStates


class _Table(dict):
    """Enough of a Faust table: a dict whose ``data`` is a real memory store."""

    def __init__(self) -> None:
        super().__init__()
        self.data = MemoryStore.__new__(MemoryStore)
        self.data.data = {}
        self.data.set_persisted_offset = lambda tp, offset: None


class _Producer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list = []

    async def send(self, records):
        records = list(records)
        self.sent.extend(records)
        fut = asyncio.get_running_loop().create_future()
        if self.fail:
            fut.set_exception(RuntimeError("broker down"))
        else:
            fut.set_result(Delivered(records[0][0], records[0][1], 0, len(records)))
        return [fut]


def _states(table: _Table) -> ChangelogStates:
    return ChangelogStates(
        table, partition_of=lambda key: 0, source_topic="stats", dump=str.encode,
        load=bytes.decode,
    )  # fmt: skip


def test_flush_writes_changelog_then_store_and_deletes() -> None:
    table = _Table()
    states = _states(table)
    states["a"] = "1"
    states["b"] = "2"
    producer = _Producer()
    assert asyncio.run(states.flush_batched(producer, "changelog")) == 2
    assert producer.sent == [("changelog", 0, b"a", b"1"), ("changelog", 0, b"b", b"2")]
    assert table.data.data == {b"a": b"1", b"b": b"2"}
    del states["a"]
    asyncio.run(states.flush_batched(producer, "changelog"))
    assert producer.sent[-1] == ("changelog", 0, b"a", None)
    assert table.data.data == {b"b": b"2"}
    assert sorted(states) == ["b"]


def test_failed_flush_keeps_the_changes_dirty() -> None:
    table = _Table()
    states = _states(table)
    states["a"] = "1"
    with pytest.raises(RuntimeError):
        asyncio.run(states.flush_batched(_Producer(fail=True), "changelog"))
    assert table.data.data == {}
    producer = _Producer()
    assert asyncio.run(states.flush_batched(producer, "changelog")) == 1
    assert table.data.data == {b"a": b"1"}


def test_deleted_keys_are_reported_once_their_tombstones_are_written() -> None:
    """``on_deleted`` lets caches keyed by participant forget it: churn stays bounded."""
    table = _Table()
    forgotten: list[bytes] = []
    states = ChangelogStates(
        table, partition_of=lambda key: 0, source_topic="stats", dump=str.encode,
        load=bytes.decode, on_deleted=forgotten.append,
    )  # fmt: skip
    states["a"] = "1"
    states["b"] = "2"
    asyncio.run(states.flush_batched(_Producer(), "changelog"))
    del states["a"]
    assert forgotten == []  # not before the tombstone is out
    with pytest.raises(RuntimeError):
        asyncio.run(states.flush_batched(_Producer(fail=True), "changelog"))
    assert forgotten == []
    asyncio.run(states.flush_batched(_Producer(), "changelog"))
    assert forgotten == [b"a"]



class _SlowProducer(_Producer):
    """Acks only when told: the window between a flush's start and its completion."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__(fail)
        self.pending: list[asyncio.Future] = []

    async def send(self, records):
        records = list(records)
        self.sent.extend(records)
        fut = asyncio.get_running_loop().create_future()
        self.pending.append(fut)
        return [fut]

    def answer(self) -> None:
        for fut in self.pending:
            if self.fail:
                fut.set_exception(RuntimeError("broker down"))
            else:
                fut.set_result(Delivered("changelog", 0, 0, 1))
        self.pending.clear()


def test_writes_made_while_a_flush_waits_for_its_acks_belong_to_the_next_flush() -> None:
    table = _Table()
    states = _states(table)
    states["a"] = "1"
    states["b"] = "1"

    async def scenario() -> None:
        producer = _SlowProducer()
        complete = await states.start_flush(producer, "changelog")
        assert producer.sent == [("changelog", 0, b"a", b"1"), ("changelog", 0, b"b", b"1")]
        states["a"] = "2"  # scoring goes on while the broker answers
        del states["b"]
        assert table.data.data == {}  # nothing in the store before the acks
        producer.answer()
        assert await complete() == 2
        assert table.data.data == {b"a": b"1", b"b": b"1"}
        assert states["a"] == "2" and "b" not in states and states.changed() == 2
        again = _Producer()
        assert await states.flush_batched(again, "changelog") == 2
        assert sorted(again.sent) == [("changelog", 0, b"a", b"2"), ("changelog", 0, b"b", None)]
        assert table.data.data == {b"a": b"2"}

    asyncio.run(scenario())


def test_a_flush_whose_acks_fail_keeps_its_changes_under_newer_ones() -> None:
    table = _Table()
    states = _states(table)
    states["a"] = "1"
    states["b"] = "1"

    async def scenario() -> None:
        producer = _SlowProducer(fail=True)
        complete = await states.start_flush(producer, "changelog")
        states["a"] = "2"
        producer.answer()
        with pytest.raises(RuntimeError):
            await complete()
        assert table.data.data == {}
        again = _Producer()
        assert await states.flush_batched(again, "changelog") == 2
        assert sorted(again.sent) == [("changelog", 0, b"a", b"2"), ("changelog", 0, b"b", b"1")]

    asyncio.run(scenario())
