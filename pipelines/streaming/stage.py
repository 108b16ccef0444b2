"""What a stage sees of the stream framework: records in, records out, keyed states.

The levels, rollups and alerts processors are written against these small protocols, not
against Faust: the seam (:mod:`pipelines.streaming.faust`) adapts Faust's messages, tables and
producer to them, and :mod:`pipelines.testing.stages` gives in-memory ones to drive a stage in
a test. They are structural and thin: Faust's own ``Message`` already is an
:class:`InputRecord`, so a batch costs no copy per record.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping, Sequence
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

Record = tuple[str, int, bytes | None, bytes | None]
"""(topic, partition, key, value); a ``None`` value is a tombstone."""

S = TypeVar("S")


class Delivered(NamedTuple):
    """Where one batch landed: its last record's offset is ``base_offset + count - 1``."""

    topic: str
    partition: int
    base_offset: int
    count: int

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.count - 1


class InputRecord(Protocol):
    """One input record, as read: where it sits in its topic and what it carries."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> float | None:
        """When the producer wrote it (seconds), if known."""


class InputBatch(Protocol):
    """Records handed to a stage together, in offset order per partition."""

    @property
    def records(self) -> Sequence[InputRecord]: ...

    def release(self) -> None:
        """Acknowledge the batch: its offsets may be committed (call once its effects are
        durable)."""


class Emitter(Protocol):
    """Sends records and lets the caller await the broker's acknowledgements."""

    async def send(self, records: Iterable[Record]) -> list[Awaitable[Delivered]]:
        """Hand every record over, in order per (topic, partition); one awaitable per batch."""

    async def send_keyed(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        """One record whose partition the producer's partitioner picks from ``key``."""


class KeyedStates(MutableMapping[str, S], Generic[S]):
    """States by key whose changes stay *dirty* until a flush writes them durably: a crash
    before the flush loses them, and the input behind them is replayed (an abstract base:
    :class:`~pipelines.streaming.buffered_states.BufferedStates` is the one implementation,
    over a Faust table in the seam and over a dict in tests)."""

    keep_decoded: int | None
    """Decoded states kept after a flush at most; None: all."""

    @abstractmethod
    def changed(self) -> int:
        """States changed (or deleted) since the last flush."""

    @abstractmethod
    def decoded_limit(self) -> int | None:
        """Decoded states kept after a flush now (None: all)."""

    @abstractmethod
    def scan(self) -> Iterator[tuple[str, Any]]:
        """Every key with its state or a cheap partial view of it."""

    @abstractmethod
    def sizes(self) -> tuple[int, int]:
        """(keys stored, states held decoded)."""

    @abstractmethod
    async def flush_batched(self, producer: Emitter) -> int:
        """Write the changes durably through ``producer``; returns how many."""

    @abstractmethod
    async def start_flush(self, producer: Emitter) -> Callable[[], Awaitable[int]]:
        """The first half of :meth:`flush_batched`; returns the second (await it)."""

    @abstractmethod
    def forget_cache(self) -> None:
        """Drop decoded copies (the stored states are the truth)."""


class HeldBatches:
    """Handled batches whose effects are not durable yet, released together after a flush.

    A handler may write its state once per interval rather than once per batch: a key
    changed by many small batches of a backlog is then written once. Until the flush that
    covers them, the batches are not released (acknowledged), so no offset whose state
    change is not durable yet is committed; a crash replays them, as it replays an
    unfinished batch.
    """

    def __init__(self) -> None:
        self._held: list[InputBatch] = []
        self.since: float | None = None
        """``time.monotonic()`` when the oldest held batch was handled; None when none is."""

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, batch: InputBatch) -> None:
        if not self._held:
            self.since = time.monotonic()
        self._held.append(batch)

    def age(self, now: float) -> float:
        """Seconds the oldest held batch has waited (0 when none is held)."""
        return 0.0 if self.since is None else now - self.since

    def take(self) -> list[InputBatch]:
        """The held batches, no longer held here: a flush covering them has started (let
        them go with :meth:`release_all` once it completes)."""
        held, self._held, self.since = self._held, [], None
        return held

    def release(self) -> int:
        """Every held batch is durable now: release each; returns how many."""
        return self.release_all(self.take())

    @staticmethod
    def release_all(batches: list[InputBatch]) -> int:
        for batch in batches:
            batch.release()
        return len(batches)
