"""A harness for the stages: drive a processor with records, no Faust and no broker.

Like bytewax's ``testing`` module: in-memory keyed states with the same flush semantics as
the changelog states (:class:`MemoryStates`: the same code, over a dict; changes stay dirty
until a flush whose changelog records the emitter acknowledged, and :meth:`MemoryStates.crash`
shows what a restart would see), a :class:`RecordingEmitter` (what was sent, optional
failures and held acknowledgements), record builders, and a :class:`StageDriver` with an
injectable :class:`StageClock` that feeds batches to a processor as the seam's
``run_batches`` does. The real broker path is tests/integration and tests/faults.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar
from unittest import mock

from pipelines.quality.partitioner import default_partition
from pipelines.streaming.buffered_states import BufferedStates
from pipelines.streaming.stage import Delivered, HeldBatches, Record, S

T = TypeVar("T")


@dataclass(slots=True)
class InRecord:
    """An input record (a :class:`~pipelines.streaming.stage.InputRecord`)."""

    value: bytes | None
    key: bytes | None = None
    partition: int = 0
    offset: int = 0
    topic: str = "input"
    timestamp: float | None = None


@dataclass
class RecordBatch:
    """A batch of input records (a :class:`~pipelines.streaming.stage.InputBatch`) that
    counts its releases (acknowledgements)."""

    records: list[InRecord]
    released: int = 0

    def release(self) -> None:
        self.released += 1


def records(
    values: Iterable[bytes | None], *, partition: int = 0, first_offset: int = 0,
    key: bytes | None = None, topic: str = "input", timestamp: float | None = None,
) -> list[InRecord]:  # fmt: skip
    """Records of ``values`` in one partition, at consecutive offsets."""
    return [
        InRecord(value, key, partition, first_offset + i, topic, timestamp)
        for i, value in enumerate(values)
    ]


class MemoryStates(BufferedStates[S]):
    """Keyed states over a dict: the changelog states' logic (decoded cache, dirty writes,
    flush order) with the dict as the durable store. A flush sends the changes to the
    emitter as changelog records and writes the dict only once they are acknowledged."""

    def __init__(
        self,
        dump: Callable[[Any], bytes],
        load: Callable[[bytes], Any],
        *,
        stored: dict[bytes, bytes] | None = None,
        partition_of: Callable[[bytes], int] = lambda key: 0,
        keep_decoded: int | None = None,
        peek: Callable[[bytes], Any] | None = None,
        changelog_topic: str = "changelog",
    ) -> None:
        super().__init__(
            {} if stored is None else stored, partition_of, "input", dump=dump, load=load,
            keep_decoded=keep_decoded, peek=peek, changelog_topic=changelog_topic,
        )  # fmt: skip

    @property
    def stored(self) -> dict[bytes, bytes]:
        """What is durable: what a restart recovers."""
        return self.table  # type: ignore[return-value]

    def crash(self, load: Callable[[bytes], Any] | None = None) -> MemoryStates[S]:
        """The states a restarted worker would see: the stored ones only (every change not
        flushed is lost); ``load`` instead of this one's, if given."""
        return MemoryStates(
            self.dump, load or self.load, stored=dict(self.stored), partition_of=self.partition_of,
            keep_decoded=self.keep_decoded, peek=self.peek, changelog_topic=self._changelog_topic(),
        )  # fmt: skip


class RecordingEmitter:
    """An :class:`~pipelines.streaming.stage.Emitter` that records what is sent.

    Acknowledged at once unless :attr:`hold_acks` (then :meth:`ack` them); :meth:`fail_next`
    makes the next sends fail (at their acknowledgement, as a broker would).
    """

    def __init__(self, partitions: int = 1, *, hold_acks: bool = False) -> None:
        self.partitions = partitions
        self.hold_acks = hold_acks
        self.sent: list[Record] = []
        """Every record handed over, in order."""
        self.acked: list[Record] = []
        """The records whose acknowledgement succeeded."""
        self._failures: list[BaseException] = []
        self._pending: list[tuple[asyncio.Future[Any], Any, list[Record]]] = []
        self._offsets: dict[tuple[str, int], int] = {}

    def fail_next(self, error: BaseException | None = None, times: int = 1) -> None:
        self._failures += [error or ConnectionError("broker down")] * times

    def to(self, topic: str) -> list[Record]:
        """The acknowledged records of one topic."""
        return [r for r in self.acked if r[0] == topic]

    async def send(self, records: Iterable[Record]) -> list[Awaitable[Delivered]]:
        groups: dict[tuple[str, int], list[Record]] = {}
        for record in records:
            groups.setdefault((record[0], record[1]), []).append(record)
        futures: list[Awaitable[Delivered]] = []
        for (topic, partition), group in groups.items():
            base = self._offsets.get((topic, partition), 0)
            self._offsets[(topic, partition)] = base + len(group)
            futures.append(self._future(Delivered(topic, partition, base, len(group)), group))
        return futures

    async def send_keyed(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        partition = default_partition(key, self.partitions) if key else 0
        return (await self.send([(topic, partition, key, value)]))[0]

    def _future(self, result: Any, group: list[Record]) -> asyncio.Future[Any]:
        self.sent += group
        future = asyncio.get_running_loop().create_future()
        if self.hold_acks:
            self._pending.append((future, result, group))
        else:
            self._resolve(future, result, group)
        return future

    def _resolve(self, future: asyncio.Future[Any], result: Any, group: list[Record]) -> None:
        if self._failures:
            future.set_exception(self._failures.pop(0))
        else:
            self.acked += group
            future.set_result(result)

    def ack(self) -> int:
        """Acknowledge (or fail) every held send; returns how many batches."""
        pending, self._pending = self._pending, []
        for future, result, group in pending:
            self._resolve(future, result, group)
        return len(pending)


@dataclass
class StageClock:
    """Wall, monotonic and perf-counter time in one, moved by the test (:meth:`advance`)."""

    wall: float = 1_700_000_000.0
    mono: float = 1_000.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def perf_counter(self) -> float:
        return self.mono

    def process_time(self) -> float:
        return 0.0

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@dataclass
class StageDriver:
    """Feeds batches to a stage's handler as the seam does (in order; a batch is released
    after its handler, or, with ``held``, held until a handler reports a flush), with the
    stage modules' ``time`` replaced by :attr:`clock`."""

    handle: Callable[[RecordBatch], Awaitable[Any]] | None = None
    """The stage's batch handler (may be set once the driver is open, so that a stage made
    inside it reads the driver's clock from the start)."""
    clock: StageClock = field(default_factory=StageClock)
    modules: tuple[ModuleType, ...] = ()
    """Modules whose ``time`` is the clock while the driver is open (``with driver:``)."""
    held: HeldBatches | None = None
    batches: list[RecordBatch] = field(default_factory=list)
    _offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    _stack: contextlib.ExitStack | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> StageDriver:
        self._stack = contextlib.ExitStack()
        for module in self.modules:
            self._stack.enter_context(mock.patch.object(module, "time", self.clock))
        self._loop = asyncio.new_event_loop()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stack is not None and self._loop is not None
        self._loop.close()
        self._stack.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run one of the stage's coroutines (a sweep, a flush) on the driver's loop."""
        assert self._loop is not None, "use the driver as a context manager"
        return self._loop.run_until_complete(coro)

    def feed(self, batch: Iterable[InRecord], *, advance: float = 0.0) -> RecordBatch:
        """One batch to the handler, after moving the clock by ``advance`` seconds. Records
        at offset 0 get the next offset of their partition."""
        self.clock.advance(advance)
        items = list(batch)
        for record in items:
            where = (record.topic, record.partition)
            if record.offset == 0:
                record.offset = self._offsets.get(where, 0)
            self._offsets[where] = record.offset + 1
        fed = RecordBatch(items)
        self.batches.append(fed)
        assert self.handle is not None, "no handler to feed"
        durable = self.run(self.handle(fed))
        if self.held is None:
            fed.release()
        else:
            self.held.hold(fed)
            if durable is not False:
                self.held.release()
        return fed

    def feed_each(self, batches: Iterable[Iterable[InRecord]], *, every: float = 0.0) -> None:
        for batch in batches:
            self.feed(batch, advance=every)

    def unreleased(self) -> Iterator[RecordBatch]:
        """Batches fed but not acknowledged (their offsets would not be committed)."""
        return (b for b in self.batches if not b.released)
