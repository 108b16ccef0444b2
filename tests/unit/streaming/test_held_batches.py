"""Deferred state writes: batches are held (not acknowledged) until the flush that covers
them, and the levels agent flushes on its interval, on too many changed states, or in a
rebalance. The real broker path (restarts, kills) is tests/integration and tests/faults."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.events import Event
from faust.types import TP
from test_intake import events as faust_events

from pipelines.streaming.faust.intake import EventBatch, OrderedIntake, run_batches
from pipelines.streaming.levels import (
    DECODED_STATES_KEPT,
    FLUSH_INTERVAL_S,
    MAX_SAMPLES_PER_STEP,
    LevelsProcessor,
)
from pipelines.streaming.stage import HeldBatches

STATS = TP("stats", 0)


class Stream:
    def __init__(self, batches: list[list[Event]]) -> None:
        self.batches = batches

    async def take_events(self, size: int, within: float) -> Any:
        for batch in self.batches:
            yield batch


class Intake:
    """What run_batches uses of OrderedIntake: every event admitted with an extra reference."""

    agent = "test"

    def __init__(self) -> None:
        self.app = SimpleNamespace(should_stop=False)

    async def watch_tail(self) -> None:
        await asyncio.sleep(3600)

    async def admit(self, events: list[Event]) -> list[Event]:
        for event in events:
            event.message.incref()
        return list(events)

    release = staticmethod(OrderedIntake.release)


def batch(*offsets: int) -> list[Event]:
    return faust_events(STATS, *offsets)


def refcounts(*batches: list[Event]) -> list[int]:
    return [e.message.refcount for b in batches for e in b]


def test_held_batches_keep_their_reference_until_released_together() -> None:
    held = HeldBatches()
    a, b = batch(1, 2), batch(3)
    for events in (a, b):
        for e in events:
            e.message.incref()
        held.hold(EventBatch(events))
    assert len(held) == 2 and held.since is not None
    assert held.age(held.since + 1.5) == 1.5
    assert refcounts(a, b) == [2, 2, 2]
    assert held.release() == 2
    assert refcounts(a, b) == [1, 1, 1]
    assert len(held) == 0 and held.age(1e9) == 0.0


def test_a_batch_whose_handler_deferred_its_write_waits_for_the_next_flush() -> None:
    first, second, third = batch(1, 2), batch(3), batch(4, 5)
    seen: list[list[int]] = []
    durable = iter([False, False, True])

    async def handle(events: EventBatch) -> bool:
        # What is still held while this batch is handled.
        seen.append(refcounts(first, second, third))
        return next(durable)

    held = HeldBatches()
    stream = Stream([first, second, third])
    asyncio.run(run_batches(Intake(), stream, handle, size=10, within=0.01, held=held))  # type: ignore[arg-type]
    # Handling the 2nd batch: the 1st is still held (not acknowledged); the 3rd flushed all.
    assert seen[1][:2] == [2, 2]
    assert seen[2][:3] == [2, 2, 2]
    assert refcounts(first, second, third) == [1, 1, 1, 1, 1]
    assert len(held) == 0


def test_without_held_batches_each_batch_is_released_after_its_handler() -> None:
    first, second = batch(1), batch(2)
    seen: list[list[int]] = []

    async def handle(events: EventBatch) -> bool:
        seen.append(refcounts(first, second))
        return False  # ignored: nothing to hold them in

    asyncio.run(run_batches(Intake(), Stream([first, second]), handle, size=10, within=0.01))  # type: ignore[arg-type]
    assert seen == [[2, 1], [1, 2]]
    assert refcounts(first, second) == [1, 1]


def _policy(
    flushed_at: float, changed: int, rebalancing: bool = False, limit: int = DECODED_STATES_KEPT
) -> Any:
    return SimpleNamespace(
        flushed_at=flushed_at,
        states=SimpleNamespace(changed=lambda: changed, decoded_limit=lambda: limit),
        rebalancing=lambda: rebalancing,
    )


def test_the_levels_agent_flushes_on_its_interval_on_many_changes_or_in_a_rebalance() -> None:
    due = LevelsProcessor.flush_due
    assert not due(_policy(100.0, 10), 100.0 + FLUSH_INTERVAL_S - 0.01)
    assert due(_policy(100.0, 10), 100.0 + FLUSH_INTERVAL_S)
    assert due(_policy(100.0, DECODED_STATES_KEPT), 100.1)
    assert not due(_policy(100.0, DECODED_STATES_KEPT - 1), 100.1)
    assert due(_policy(100.0, 0, rebalancing=True), 100.1)


def test_with_a_shrunk_allowance_it_flushes_after_one_steps_worth_of_changes() -> None:
    """Changed states wait decoded until the flush; while decoded states do not pay (the
    allowance shrank to 1,024) the agent flushes at a step's worth, not at 16,384."""
    due = LevelsProcessor.flush_due
    assert due(_policy(100.0, MAX_SAMPLES_PER_STEP, limit=1_024), 100.1)
    assert not due(_policy(100.0, MAX_SAMPLES_PER_STEP - 1, limit=1_024), 100.1)
    assert not due(_policy(100.0, MAX_SAMPLES_PER_STEP, limit=DECODED_STATES_KEPT), 100.1)


def test_a_batch_held_after_a_flush_started_waits_for_the_next_one() -> None:
    held = HeldBatches()
    a, b = batch(1), batch(2)
    for events in (a, b):
        events[0].message.incref()
    held.hold(EventBatch(a))
    covered = held.take()  # the flush took its states: ``a``'s changes are in it
    held.hold(EventBatch(b))  # handled while that flush waited for its acks
    assert HeldBatches.release_all(covered) == 1
    assert refcounts(a, b) == [1, 2] and len(held) == 1


def test_a_batch_held_past_fausts_own_ack_is_completed_by_its_release() -> None:
    """Faust's ``take_events`` acks a batch when it fetches the next one: a held batch has
    then one reference left (ours), and only the release can complete it. (It once only
    dropped the reference, and a held batch was never committed.)"""
    held = HeldBatches()
    events = batch(1, 2)  # Faust's own reference
    for e in events:
        e.message.incref()  # admitted
    held.hold(EventBatch(events))
    for e in events:
        e.ack()  # take_events moves on
    assert [e.message.acked for e in events] == [False, False]
    held.release()
    assert [e.message.acked for e in events] == [True, True]
