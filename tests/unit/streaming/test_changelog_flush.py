"""Keyed states' flush_batched: changelog first, then the store; nothing lost on failure."""

import asyncio
from types import SimpleNamespace

import pytest

from pipelines.testing.stages import MemoryStates, RecordingEmitter


def _states() -> MemoryStates:
    return MemoryStates(str.encode, bytes.decode)


def _failing() -> RecordingEmitter:
    emitter = RecordingEmitter()
    emitter.fail_next(RuntimeError("broker down"))
    return emitter


def test_flush_writes_changelog_then_store_and_deletes() -> None:
    states = _states()
    table = states.stored
    states["a"] = "1"
    states["b"] = "2"
    producer = RecordingEmitter()
    assert asyncio.run(states.flush_batched(producer)) == 2
    assert producer.sent == [("changelog", 0, b"a", b"1"), ("changelog", 0, b"b", b"2")]
    assert table == {b"a": b"1", b"b": b"2"}
    del states["a"]
    asyncio.run(states.flush_batched(producer))
    assert producer.sent[-1] == ("changelog", 0, b"a", None)
    assert table == {b"b": b"2"}
    assert sorted(states) == ["b"]


def test_failed_flush_keeps_the_changes_dirty() -> None:
    states = _states()
    table = states.stored
    states["a"] = "1"
    with pytest.raises(RuntimeError):
        asyncio.run(states.flush_batched(_failing()))
    assert table == {}
    producer = RecordingEmitter()
    assert asyncio.run(states.flush_batched(producer)) == 1
    assert table == {b"a": b"1"}


def test_deleted_keys_are_reported_once_their_tombstones_are_written() -> None:
    """``on_deleted`` lets caches keyed by participant forget it: churn stays bounded."""
    forgotten: list[bytes] = []
    states = _states()
    states.on_deleted = forgotten.append
    states["a"] = "1"
    states["b"] = "2"
    asyncio.run(states.flush_batched(RecordingEmitter()))
    del states["a"]
    assert forgotten == []  # not before the tombstone is out
    with pytest.raises(RuntimeError):
        asyncio.run(states.flush_batched(_failing()))
    assert forgotten == []
    asyncio.run(states.flush_batched(RecordingEmitter()))
    assert forgotten == [b"a"]



def _failing_held() -> RecordingEmitter:
    emitter = RecordingEmitter(hold_acks=True)
    emitter.fail_next(RuntimeError("broker down"))
    return emitter


def test_writes_made_while_a_flush_waits_for_its_acks_belong_to_the_next_flush() -> None:
    states = _states()
    table = states.stored
    states["a"] = "1"
    states["b"] = "1"

    async def scenario() -> None:
        producer = RecordingEmitter(hold_acks=True)
        complete = await states.start_flush(producer)
        assert producer.sent == [("changelog", 0, b"a", b"1"), ("changelog", 0, b"b", b"1")]
        states["a"] = "2"  # scoring goes on while the broker answers
        del states["b"]
        assert table == {}  # nothing in the store before the acks
        producer.ack()
        assert await complete() == 2
        assert table == {b"a": b"1", b"b": b"1"}
        assert states["a"] == "2" and "b" not in states and states.changed() == 2
        again = RecordingEmitter()
        assert await states.flush_batched(again) == 2
        assert sorted(again.sent) == [("changelog", 0, b"a", b"2"), ("changelog", 0, b"b", None)]
        assert table == {b"a": b"2"}

    asyncio.run(scenario())


def test_a_flush_whose_acks_fail_keeps_its_changes_under_newer_ones() -> None:
    states = _states()
    table = states.stored
    states["a"] = "1"
    states["b"] = "1"

    async def scenario() -> None:
        producer = _failing_held()
        complete = await states.start_flush(producer)
        states["a"] = "2"
        producer.ack()
        with pytest.raises(RuntimeError):
            await complete()
        assert table == {}
        again = RecordingEmitter()
        assert await states.flush_batched(again) == 2
        assert sorted(again.sent) == [("changelog", 0, b"a", b"2"), ("changelog", 0, b"b", b"1")]

    asyncio.run(scenario())


def test_the_seam_states_write_a_faust_memory_store_with_the_changelog_offsets() -> None:
    """The same flush over a Faust table: the memory store's dict is written directly, and
    the persisted changelog offset is the last acknowledged one per partition."""
    from faust.stores.memory import Store as MemoryStore

    from pipelines.streaming.faust.states import ChangelogStates

    persisted: dict = {}
    table = SimpleNamespace(data=MemoryStore.__new__(MemoryStore))
    table.data.data = {}
    table.data.set_persisted_offset = persisted.__setitem__
    states = ChangelogStates(
        table, partition_of=lambda key: 0, source_topic="stats", dump=str.encode,
        load=bytes.decode, changelog_topic="changelog",
    )  # fmt: skip
    states["a"] = "1"
    states["b"] = "2"
    emitter = RecordingEmitter()
    assert asyncio.run(states.flush_batched(emitter)) == 2
    assert table.data.data == {b"a": b"1", b"b": b"2"}
    assert [(tp.topic, tp.partition, offset) for tp, offset in persisted.items()] == [
        ("changelog", 0, 1)
    ]
    assert states["a"] == "1" and sorted(states) == ["a", "b"]
