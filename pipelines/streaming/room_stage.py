"""One room stage: a keyed stream of a room floor (rooms or regions) driven by pure logic.

The rollups and alerts stages, at the room and the region floor, are the same machine around
different per-key logic (:mod:`pipelines.quality.room.logic`): decode the input bundles, judge
each record's time against *its partition's* :class:`StreamClock` (:func:`admit`), fold it
into its key's logic, send the outputs, wait for the broker's acks, and only then flush the
keyed states (a crash in between replays the batch into the same outputs). A timer advances
every key to its partition's stream time, visiting only decoded keys and those whose stored
bytes say something is due; a key decoded again catches up with the sweeps it missed
(:class:`MissedSweeps`); an idle key is deleted. What differs is a :class:`Floor`: the logic
kind, the decoder, the admission of a record, the timer's hooks, and what to do with the
outputs (which topic, key and partition; bundles to the next floor).

Clock policy (docs/architecture.md, "The room stage"): a key gets its own partition's
stream time, never one clock for all partitions; a partition restored from its changelog
that reads nothing has its clock seeded from its keys' own times, then idles forward.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import msgspec

from pipelines.observability import METRICS
from pipelines.quality.event_time import EventTimeBounds, Verdict, describe
from pipelines.quality.room.logic import KeyLogic, LogicKind
from pipelines.streaming.bundles import records_of
from pipelines.streaming.clock import StreamClock
from pipelines.streaming.levels import PartitionOf
from pipelines.streaming.missed_sweeps import MissedSweeps, catch_up_on_decode
from pipelines.streaming.stage import Emitter, InputBatch, KeyedStates

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")


def accept(clock: StreamClock, record: Any, wall: float) -> Verdict:
    """The admission of a floor whose records move no clock (its keys are not timed)."""
    return "accepted"


@dataclass(frozen=True)
class Floor(Generic[In, Out]):
    """What a room stage's floor is made of (see the module docstring)."""

    stage: str
    """``rollups``, ``alerts`` or ``upstream`` (whose network): logs, metrics and the bundles'
    stage name."""
    what: str
    """What a record is, for the logs (``level event``, ``room minute``, ``room summary``)."""
    kind: LogicKind[In, Out]
    decode: Callable[[bytes], In]
    wrap: Callable[[Any], KeyLogic[In, Out]]
    """The logic of a state loaded by the table's codec (the table keeps the state's bytes)."""
    publish: Callable[[list[Out]], Awaitable[None]]
    """Send the outputs and wait for the broker's acks (the stage flushes states only after)."""
    admit: Callable[[StreamClock, In, float], Verdict] = accept
    """Move the record's partition clock by the record and judge its time."""
    timed: bool = True
    """Whether the timer advances the floor's keys (a rollups region is moved only by its
    room minutes)."""
    due: Callable[[Any, int], bool] | None = None
    """For a stored state seen through the table's peek: can advancing it to this stream
    time do anything? (Decoded keys are always advanced.)"""
    peek_type: type | None = None
    catch_up: Callable[[KeyLogic[In, Out], int], Sequence[Out]] | None = None
    """A key decoded again, moved as the sweeps it missed (to that stream time) moved it."""
    touched: Callable[[KeyLogic[In, Out]], object] | None = None
    """Something of a key that, changed by an advance with no output, must still be written."""
    restored_time: Callable[[Any], int] | None = None
    """The stream time a stored key had reached (its state or peek): seeds the clock of a
    restored partition that reads nothing."""


class RoomStage(Generic[In, Out]):
    """One floor of a room stage over its keyed states (see the module docstring)."""

    def __init__(
        self,
        floor: Floor[In, Out],
        states: KeyedStates[Any],
        producer: Emitter,
        partition_of: PartitionOf,
        bounds: EventTimeBounds,
        lock: asyncio.Lock,
        wall: Callable[[], float],
        out_of_bounds: Counter[str] | None = None,
    ) -> None:
        self.floor = floor
        self.states = states
        self.producer = producer
        self.partition_of = partition_of
        self.bounds = bounds
        self.lock = lock
        self.wall = wall
        self.clocks: dict[int, StreamClock] = {}
        """Stream time per input partition: the clock policy (module docstring)."""
        self.out_of_bounds: Counter[str] = Counter() if out_of_bounds is None else out_of_bounds
        """Records dropped by their time: ``late`` and ``ahead`` (see :func:`admit`)."""
        self.read = 0
        self.skipped = 0
        self.missed = MissedSweeps()
        if states is not None:
            _logic_codec(states, floor.wrap)
            if floor.catch_up is not None:  # the keys decoded again catch up with the sweeps
                catch_up_on_decode(states, self._catch_up)

    def _catch_up(self, logic: KeyLogic[In, Out]) -> None:
        """A key decoded from its table bytes, advanced as the sweeps it missed would have."""
        key = _key(logic)
        seen = self.missed.seen(self.partition_of(key), key)
        if seen and self.floor.catch_up(logic, seen):  # type: ignore[misc]
            log.error("%s: %s had outputs due at a sweep it missed", self.floor.stage, key)

    def forget_cache(self) -> None:
        """After a rebalance the tables are the truth: drop decoded copies (and their sweeps)."""
        self.states.forget_cache()
        self.missed.clear()

    def _clock(self, partition: int) -> StreamClock:
        clock = self.clocks.get(partition)
        if clock is None:
            clock = self.clocks[partition] = StreamClock()
        return clock

    async def batch(self, batch: InputBatch) -> None:
        """Fold the batch's records into their keys; publish what they made due, then flush."""
        floor, states = self.floor, self.states
        kind, decode, admit = floor.kind, floor.decode, floor.admit
        out: list[Out] = []
        async with self.lock:
            for record in batch.records:
                clock = self._clock(record.partition)
                for value in records_of((record,), floor.stage):
                    try:
                        item = decode(value)
                    except msgspec.DecodeError as exc:
                        self.skipped += 1
                        log.warning("%s: skipping undecodable %s: %s", floor.stage, floor.what, exc)
                        continue
                    self.read += 1
                    wall = self.wall()
                    verdict = admit(clock, item, wall)
                    if verdict != "accepted":
                        self._count(verdict, item)
                        continue
                    key = kind.key_of(item)
                    logic = states.get(key)
                    now = clock.now(wall)
                    if logic is None:
                        logic = kind.start(item, now)
                        self.missed.created(self.partition_of(key), key)
                    out.extend(logic.apply((item,), now))
                    if logic.is_idle():
                        states.pop(key, None)
                    else:
                        states[key] = logic
            await floor.publish(out)
            await states.flush_batched(self.producer)

    def stream_times(self, wall: float) -> dict[int, int]:
        """The stream time of each partition with a clock (one that has read nothing: none)."""
        nows: dict[int, int] = {}
        for partition, clock in self.clocks.items():
            now = clock.now(wall)
            if now:
                nows[partition] = now
        return nows

    async def advance(self) -> None:
        """Advance every key to its partition's stream time (quiet keys included); the caller
        holds the lock."""
        floor, states = self.floor, self.states
        wall = self.wall()
        nows = self.stream_times(wall)
        work = self._work(nows, wall)
        out: list[Out] = []
        step = states.keep_decoded or len(work)
        touched = floor.touched
        for i, (key, now) in enumerate(work):
            if i and i % step == 0:  # at most a cache's worth decoded at once
                await floor.publish(out)
                await states.flush_batched(self.producer)
                out = []
            logic = states[key]
            before = touched(logic) if touched is not None else None
            emitted = logic.advance(now)
            out.extend(emitted)
            if logic.is_idle():
                del states[key]
            elif emitted or (touched is not None and touched(logic) != before):
                states[key] = logic
        for partition, now in nows.items():  # after the decoding above: see _catch_up
            self.missed.swept(partition, now)
        await floor.publish(out)
        await states.flush_batched(self.producer)

    def _work(self, nows: dict[int, int], wall: float) -> list[tuple[str, int]]:
        """(key, stream time) of the decoded keys and of the others with something due, in
        key order. A restored partition with keys but no clock gets one, seeded from its
        keys' own times (next sweep: the partition's own time, idling forward from there)."""
        floor, partition_of = self.floor, self.partition_of
        due, peek_type, restored_time = floor.due, floor.peek_type, floor.restored_time
        seeds: dict[int, int] = {}
        work: list[tuple[str, int]] = []
        for key, state in self.states.scan():
            partition = partition_of(key)
            now = nows.get(partition)
            if now is None:
                if restored_time is not None and partition not in self.clocks:
                    seeds[partition] = max(seeds.get(partition, 0), restored_time(state))
                continue
            if type(state) is not peek_type or due is None or due(state, now):
                work.append((key, now))
        for partition, seed in seeds.items():
            if seed:
                self._clock(partition).observe(seed, wall)
        work.sort()
        return work

    def at_stop(self, wall: float) -> list[Out]:
        """Every key's open outputs as they stand at its partition's stream time (for a
        graceful stop; the states are left as they are)."""
        nows = self.stream_times(wall)
        out: list[Out] = []
        for key, _ in list(self.states.scan()):
            now = nows.get(self.partition_of(key))
            if now:
                out.extend(self.states[key].at_stop(now))
        return out

    def _count(self, verdict: Verdict, record: Any) -> None:
        """Count a record dropped by its time; log the first of each kind and then every
        power of two (one wrong clock sends an event per level change)."""
        stage = self.floor.stage
        n = self.out_of_bounds[verdict] = self.out_of_bounds[verdict] + 1
        METRICS.out_of_bounds.labels(stage=stage, verdict=verdict).inc()
        if n & (n - 1) == 0:
            log.warning(
                "%s: dropped %d level event(s) %s, the last %s (client time %d, stream"
                " time %s): is that client's clock wrong?", stage, n,
                describe(verdict, self.bounds), record.event_id, record.timestamp,
                record.stream_time,
            )  # fmt: skip


def _key(logic: Any) -> str:
    """A room logic's key (the adapters keep their state as ``state`` with a ``room_sid``)."""
    return logic.state.room_sid


def _logic_codec(states: Any, wrap: Callable[[Any], Any]) -> None:
    """Make ``states`` (a :class:`~pipelines.streaming.buffered_states.BufferedStates` whose
    codec is the state's) hold the logic around each state: the table bytes stay the state's."""
    dump: Callable[[Any], bytes] = getattr(states.dump, "of_state", states.dump)
    load: Callable[[bytes], Any] = getattr(states.load, "of_state", states.load)

    def dump_logic(logic: Any) -> bytes:
        return dump(logic.state)

    def load_logic(data: bytes) -> Any:
        return wrap(load(data))

    dump_logic.of_state = dump  # type: ignore[attr-defined]  # a copy of the states rewraps
    load_logic.of_state = load  # type: ignore[attr-defined]
    states.dump, states.load = dump_logic, load_logic
