"""OrderedIntake: events in offset order per partition, gaps read again, nothing acknowledged
early. Events and messages are Faust's own; the consumer and app are small stand-ins with the
methods the intake calls; the real broker path is tests/faults (test_dropped_records,
test_process_kills)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust.events import Event
from faust.types import TP, Message

from pipelines.observability import METRICS
from pipelines.streaming.faust import intake as intake_module
from pipelines.streaming.faust.intake import MAX_SEEKS, OrderedIntake

P0, P1 = TP("stats", 0), TP("stats", 1)


_APP = SimpleNamespace(consumer=None)


def faust_event(tp: TP, offset: int) -> Event:
    """A real Faust event, holding the stream's own reference (as ``take_events`` hands
    them over): its reference counting is what the intake relies on."""
    message = Message(tp.topic, tp.partition, offset, 0.0, 0, None, None, b"", None, tp=tp)
    message.incref()
    return Event(_APP, None, b"", None, message)  # type: ignore[arg-type]


def events(tp: TP, *offsets: int) -> list[Event]:
    return [faust_event(tp, o) for o in offsets]


class Thread:
    """The consumer thread: ``call_thread`` runs the aiokafka call."""

    def __init__(self, committed: dict[TP, int | None]) -> None:
        self.committed_offsets = committed

    def _ensure_consumer(self) -> Thread:
        return self

    async def committed(self, tp: TP) -> int | None:
        return self.committed_offsets.get(tp)

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        return await fun(*args)


@dataclass
class Consumer:
    assigned: set[TP]
    committed: dict[TP, int | None] = field(default_factory=dict)
    earliest: dict[TP, int] = field(default_factory=dict)
    positions: dict[TP, int] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._thread = Thread(self.committed)

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.earliest.get(tp, 0) for tp in tps}

    async def seek_wait(self, partitions: dict[TP, int]) -> None:
        self.seeks.extend(partitions.items())

    async def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)


class Signal:
    def __init__(self) -> None:
        self.handlers: list[Any] = []

    def connect(self, fun: Any) -> Any:
        self.handlers.append(fun)
        return fun


class App:
    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.on_partitions_revoked = Signal()


def make(**consumer: Any) -> tuple[OrderedIntake, Consumer]:
    c = Consumer(**consumer)
    return OrderedIntake(App(c), "test"), c  # type: ignore[arg-type]


def offsets(admitted: list[Event]) -> list[tuple[int, int]]:
    return [(e.message.tp.partition, e.message.offset) for e in admitted]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_in_order_events_are_admitted_from_the_committed_offset_and_held_until_released():
    intake, _ = make(assigned={P0, P1}, committed={P0: 10, P1: None}, earliest={P1: 3})
    batch = events(P0, 10, 11) + events(P1, 3, 4)
    admitted = run(intake.admit(batch))
    assert offsets(admitted) == [(0, 10), (0, 11), (1, 3), (1, 4)]
    assert intake.next_offset == {P0: 12, P1: 5}
    assert all(e.message.refcount == 2 for e in batch)  # Faust's ack alone cannot finish them
    intake.release(admitted)
    assert all(e.message.refcount == 1 for e in batch)


def test_replays_are_skipped_without_an_extra_reference():
    intake, consumer = make(assigned={P0}, committed={P0: 5})
    run(intake.admit(events(P0, 5, 6, 7)))
    replay = events(P0, 5, 6, 7, 8)
    assert offsets(run(intake.admit(replay))) == [(0, 8)]
    assert [e.message.refcount for e in replay] == [1, 1, 1, 2]
    assert consumer.seeks == []


def test_a_gap_stops_the_partition_seeks_back_and_the_records_come_again():
    intake, consumer = make(assigned={P0, P1}, committed={P0: 0, P1: 0})
    before = METRICS.intake_gaps.labels(agent="test", outcome="reread")._value.get()
    batch = events(P0, 0, 1, 5, 6) + events(P1, 0, 1)
    admitted = run(intake.admit(batch))
    # P0 stops at the gap (2-4 missing); P1 is unaffected.
    assert offsets(admitted) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert consumer.seeks == [(P0, 2)]
    held = [e for e in batch if e.message.offset in (5, 6)]
    assert all(e.message.refcount == 2 for e in held)  # never acknowledged from here
    assert METRICS.intake_gaps.labels(agent="test", outcome="reread")._value.get() == before + 1
    # Stale copies still queued behind the seek do not trigger a second one.
    assert run(intake.admit(events(P0, 7))) == []
    assert consumer.seeks == [(P0, 2)]
    # The consumer reads again from offset 2: everything in order.
    assert offsets(run(intake.admit(events(P0, 2, 3, 4, 5, 6, 7)))) == [
        (0, 2), (0, 3), (0, 4), (0, 5), (0, 6), (0, 7),
    ]  # fmt: skip
    assert intake.next_offset[P0] == 8


def test_a_gap_that_never_fills_is_accepted_after_max_seeks(monkeypatch):
    intake, consumer = make(assigned={P0}, committed={P0: 0})
    clock = [1000.0]
    monkeypatch.setattr(intake_module.time, "monotonic", lambda: clock[0])
    run(intake.admit(events(P0, 0)))
    for _ in range(MAX_SEEKS):
        assert run(intake.admit(events(P0, 3))) == []
        clock[0] += intake_module.RESEEK_AFTER_S
    assert consumer.seeks == [(P0, 1)] * MAX_SEEKS
    admitted = run(intake.admit(events(P0, 3, 4)))
    assert offsets(admitted) == [(0, 3), (0, 4)]
    assert len(consumer.seeks) == MAX_SEEKS


def test_records_deleted_by_retention_are_given_up_at_once():
    intake, consumer = make(assigned={P0}, committed={P0: 0}, earliest={P0: 50})
    assert offsets(run(intake.admit(events(P0, 50, 51)))) == [(0, 50), (0, 51)]
    assert consumer.seeks == []


def test_records_between_the_log_start_and_the_first_seen_are_read_again():
    intake, consumer = make(assigned={P0}, committed={P0: 0}, earliest={P0: 50})
    assert run(intake.admit(events(P0, 60))) == []
    assert consumer.seeks == [(P0, 50)]


def test_events_of_partitions_not_assigned_are_held_not_handled():
    intake, _ = make(assigned={P1}, committed={P0: 0, P1: 0})
    batch = events(P0, 0) + events(P1, 0)
    assert offsets(run(intake.admit(batch))) == [(1, 0)]
    assert batch[0].message.refcount == 2


def test_a_revoke_forgets_positions_so_they_are_learned_again():
    intake, consumer = make(assigned={P0}, committed={P0: 0})
    run(intake.admit(events(P0, 0, 1)))
    consumer.committed[P0] = 1  # another worker may have moved it on meanwhile
    handler = intake.app.on_partitions_revoked.handlers[0]
    run(handler(intake.app, {P0}))
    assert intake.next_offset == {}
    assert offsets(run(intake.admit(events(P0, 1, 2)))) == [(0, 1), (0, 2)]


def test_lost_tail_records_are_found_by_the_position_check():
    intake, consumer = make(assigned={P0}, committed={P0: 0})
    run(intake.admit(events(P0, 0, 1)))
    consumer.positions[P0] = 9  # fetched up to 8, delivered only 0-1: nothing after to see
    last: dict[TP, int] = {}
    run(intake.check_tail(last))  # first look: remembers where P0 was
    assert consumer.seeks == []
    run(intake.check_tail(last))  # no progress since, consumer ahead: a lost tail
    assert consumer.seeks == [(P0, 2)]


def test_a_partition_making_progress_is_left_alone_by_the_position_check():
    intake, consumer = make(assigned={P0}, committed={P0: 0})
    consumer.positions[P0] = 100
    last: dict[TP, int] = {}
    run(intake.admit(events(P0, 0)))
    run(intake.check_tail(last))
    run(intake.admit(events(P0, 1)))
    run(intake.check_tail(last))
    assert consumer.seeks == []


@pytest.mark.parametrize("seed", range(20))
def test_any_delivery_order_with_reseeks_handles_each_offset_once_in_order(seed):
    """Random drops, duplicates and reorderings of a partition's records, with the consumer
    reading again from wherever the intake seeks: each offset is handled once, in order."""
    rng = random.Random(seed)
    intake, consumer = make(assigned={P0}, committed={P0: 0})
    end, position, handled = 60, 0, []
    for _ in range(400):
        if consumer.seeks:
            position = consumer.seeks.pop()[1]
            intake._seeks.clear()  # let every gap seek again at once in this model
        chunk = list(range(position, min(end, position + rng.randint(1, 8))))
        position += len(chunk)
        delivered = [o for o in chunk if rng.random() > 0.2]  # some vanish
        if rng.random() < 0.2:
            delivered += rng.sample(range(0, end), 2)  # stale copies, replays
        handled += [e.message.offset for e in run(intake.admit(events(P0, *delivered)))]
        if position >= end:
            consumer.positions[P0] = end
            run(intake.check_tail({P0: intake.next_offset[P0]}))
            if not consumer.seeks and intake.next_offset[P0] == end:
                break
    assert handled == list(range(end))


def test_a_sought_partition_that_stays_silent_is_sought_again(monkeypatch):
    """After a seek, a fetch already in flight can move Faust's read offset past the gap
    again; Faust then drops the records read again, and nothing arrives to show the gap."""
    intake, consumer = make(assigned={P0, P1}, committed={P0: 0, P1: 0})
    clock = [1000.0]
    monkeypatch.setattr(intake_module.time, "monotonic", lambda: clock[0])
    run(intake.admit(events(P0, 0, 3) + events(P1, 0, 2)))  # gaps: seek P0 -> 1, P1 -> 1
    assert consumer.seeks == [(P0, 1), (P1, 1)]
    consumer.positions.update({P0: 40, P1: 40})
    run(intake.check_sought())  # too soon: the seek may still be delivering
    assert consumer.seeks == [(P0, 1), (P1, 1)]
    clock[0] += intake_module.RESEEK_AFTER_S
    run(intake.admit(events(P1, 1, 2)))  # P1's records came again: its gap is closed
    run(intake.check_sought())
    assert consumer.seeks == [(P0, 1), (P1, 1), (P0, 1)]  # only the silent P0, once more
    assert offsets(run(intake.admit(events(P0, 1, 2, 3)))) == [(0, 1), (0, 2), (0, 3)]
    clock[0] += intake_module.RESEEK_AFTER_S
    run(intake.check_sought())  # nothing sought any more
    assert consumer.seeks == [(P0, 1), (P1, 1), (P0, 1)]
