"""Keyed states whose writes wait for a flush, with the write order the stages need.

The engine sees a plain mapping over a store of each key's bytes (the seam's
:class:`~pipelines.streaming.faust.states.ChangelogStates` over a changelog-backed Faust
table; :class:`~pipelines.testing.stages.MemoryStates` over a dict in tests). Decoded
states are cached (with ``keep_decoded``, only the most recently written ones, and only while
they are read again: the table's msgpack bytes are
the copy every key has, ~6x smaller than the decoded objects, and a miss decodes them again;
see :mod:`~pipelines.streaming.decoded_allowance`); writes are buffered as *dirty*
and reach the table (and so its changelog) only on :meth:`flush`, which the agent calls after
the level events of a batch are acknowledged by the broker. A crash between the two then
replays the batch and re-emits events with the same ids (at-least-once), instead of having
advanced the state past events that were never sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from itertools import islice
from typing import Any

from pipelines.quality import dump_state, load_state
from pipelines.streaming.decoded_allowance import DecodedAllowance
from pipelines.streaming.stage import (
    Delivered,
    Emitter,
    KeyedStates,
    S,
)

_DELETED = object()


class BufferedStates(KeyedStates[S]):
    """A mapping of key (participant, room, region) to state over a store of bytes (a
    :class:`~pipelines.streaming.stage.KeyedStates`).

    Store keys are the key's UTF-8 bytes, exactly the input topic's message key, so the
    default partitioner puts both in the same partition. A plain dict store is read and
    written directly; a subclass adapts another (see :meth:`_memory_store_data`,
    :meth:`_write_now`, :meth:`_store`).
    """

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        partition_of: Callable[[bytes], int],
        source_topic: str,
        dump: Callable[[Any], bytes] = dump_state,
        load: Callable[[bytes], Any] = load_state,
        on_deleted: Callable[[bytes], None] | None = None,
        keep_decoded: int | None = None,
        peek: Callable[[bytes], Any] | None = None,
        changelog_topic: str | None = None,
    ) -> None:
        self.table = table
        self.changelog_topic = changelog_topic
        """Where :meth:`start_flush` sends the changes (None: the table's, see
        :meth:`_changelog_topic`)."""
        self.partition_of = partition_of
        self.source_topic = source_topic
        self.dump = dump
        self.load = load
        self.on_deleted = on_deleted
        """Called with each deleted key once its deletion is written (to forget what an
        owner keeps keyed by it)."""
        self.keep_decoded = keep_decoded
        """Decoded states kept after a flush at most (the most recently written); None: all."""
        self.allowance = None if keep_decoded is None else DecodedAllowance.for_states(keep_decoded)
        """How many of those it keeps now: fewer while they are not read again."""
        self.peek = peek
        """Decodes what :meth:`scan` reports for a state not decoded (None: all of it)."""
        self._cache: dict[str, S] = {}
        self._dirty: dict[str, Any] = {}
        self._evicted_keys: dict[str, None] = {}
        """While the allowance is shrunk: keys evicted lately, oldest first (at most its full
        size), to tell whether the full size would have served their next read."""
        self._hits = self._decoded = self._would_hit = 0
        """Reads since the last eviction, for the allowance (plain counters on the hot path)."""

    def __getitem__(self, key: str) -> S:
        state = self._cache.get(key)
        if state is not None:
            self._hits += 1
            return state
        if self._dirty.get(key) is _DELETED:
            raise KeyError(key)
        state = self.load(self._stored(key.encode()))
        self._decoded += 1
        if key in self._evicted_keys:
            self._would_hit += 1
            del self._evicted_keys[key]
        self._cache[key] = state
        return state

    def _stored(self, raw_key: bytes) -> bytes:
        """A key's bytes in the table's store (the memory store's dict directly, see
        :meth:`_stored_keys`); KeyError when absent."""
        data = self._memory_store_data()
        if data is not None:
            return data[raw_key]
        return self.table[raw_key]

    def get(self, key: str, default: Any = None) -> Any:  # hot path: avoid KeyError
        state = self._cache.get(key)
        if state is not None:
            self._hits += 1
            return state
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: str, state: S) -> None:
        if self.keep_decoded is not None:  # most recently written last: evicted last
            self._cache.pop(key, None)
        self._cache[key] = state
        self._dirty[key] = state

    def __delitem__(self, key: str) -> None:
        existed = key in self._cache or key.encode() in self.table
        self._cache.pop(key, None)
        if not existed:
            raise KeyError(key)
        self._dirty[key] = _DELETED

    def __iter__(self) -> Iterator[str]:
        keys = {k.decode() for k in self._stored_keys()} | set(self._cache)
        for key, value in self._dirty.items():
            if value is _DELETED:
                keys.discard(key)
        return iter(list(keys))

    def _stored_keys(self) -> Iterator[bytes]:
        """Keys in the table's store. The memory store's own dict directly: iterating the
        Faust table costs ~10 us per key, and the sweep iterates every participant every 2 s
        (at 100,000 participants that alone was more than a core)."""
        data = self._memory_store_data()
        if data is not None:
            return iter(list(data))
        return iter(self.table)

    def changed(self) -> int:
        """States changed (or deleted) since the last flush."""
        return len(self._dirty)

    def decoded_limit(self) -> int | None:
        """Decoded states it keeps after a flush now (None: all); changed states wait decoded
        until then, so an owner flushing by count should count to this."""
        return None if self.allowance is None else self.allowance.limit

    def sizes(self) -> tuple[int, int]:
        """(keys in the table's store, states held decoded), cheaply (for a gauge)."""
        data = self._memory_store_data()
        return (len(data) if data is not None else len(self.table)), len(self._cache)

    def _memory_store_data(self) -> dict[bytes, bytes] | None:
        """The store as a plain dict when it is one (the fast path), else None."""
        table = self.table
        return table if type(table) is dict else None

    def _changelog_topic(self) -> str:
        if self.changelog_topic is None:
            raise ValueError("no changelog topic to flush to")
        return self.changelog_topic

    def _write_now(self, raw_key: bytes, value: bytes | None) -> None:
        """One change into the table (:meth:`flush`); None deletes."""
        if value is None:
            self.table.pop(raw_key, None)
        else:
            self.table[raw_key] = value

    def scan(self) -> Iterator[tuple[str, Any]]:
        """Every key with its state: the decoded one where there is one, else ``peek`` of its
        stored bytes (a cheap partial decode; without ``peek``, the full state).

        For a periodic pass over every key (the sweep) that acts on few of them: it neither
        decodes every state nor fills the cache with them. Lazily, one stored state at a
        time: a list of every key's view was ~26 MB of short-lived objects every 2 s at
        100,000 participants, which the heap kept as holes (docs/performance.md, memory).
        The caller may write or delete the key it was just given; the keys are taken when
        the pass starts.
        """
        cache, dirty = self._cache, self._dirty
        yield from list(cache.items())
        yield from [(k, v) for k, v in dirty.items() if v is not _DELETED and k not in cache]
        peek = self.peek or self.load
        data = self._memory_store_data()
        stored = data if data is not None else self.table
        for raw_key in list(stored):
            key = raw_key.decode()
            if key in cache or key in dirty:
                continue
            raw = stored.get(raw_key)
            if raw is not None:
                yield key, peek(raw)

    def _evict(self) -> None:
        """Down to the allowance's limit of decoded states, the least recently written first
        (never one still dirty: the table does not have it yet)."""
        allowance = self.allowance
        if allowance is None:
            return
        allowance.hits += self._hits
        allowance.decoded += self._decoded
        allowance.would_hit += self._would_hit
        self._hits = self._decoded = self._would_hit = 0
        excess = len(self._cache) - allowance.review()
        remembered = self._evicted_keys
        if excess > 0:
            dirty = self._dirty
            evicted = [k for k in islice(self._cache, excess) if k not in dirty]
            for key in evicted:
                del self._cache[key]
            allowance.evicted += len(evicted)
            if allowance.shrunk:
                remembered.update(dict.fromkeys(evicted))
                for key in list(islice(remembered, max(0, len(remembered) - allowance.full))):
                    del remembered[key]
        if remembered and not allowance.shrunk:
            remembered.clear()

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self) -> int:
        """Write buffered changes to the table (its changelog); returns how many."""
        count = len(self._dirty)
        for key, value in self._dirty.items():
            self._write_now(key.encode(), None if value is _DELETED else self.dump(value))
        deleted = [key for key, value in self._dirty.items() if value is _DELETED]
        self._dirty.clear()
        self._forget(k.encode() for k in deleted)
        self._evict()
        return count

    def _forget(self, deleted_keys: Iterable[bytes]) -> None:
        remembered = self._evicted_keys
        for raw_key in deleted_keys:
            if remembered:
                remembered.pop(raw_key.decode(), None)
            if self.on_deleted is not None:
                self.on_deleted(raw_key)

    async def flush_batched(self, producer: Emitter) -> int:
        """:meth:`flush` at a few us per change instead of Faust's ~100 us: the changelog
        records go out in one record batch per partition and are acknowledged before the
        local store is written; returns how many.

        What Faust's table would do per key (``Table.on_key_set``: a changelog record in the
        key's default partition, the store write, RocksDB's persisted changelog offset), in
        bulk. Recovery is Faust's own: it reads this same changelog topic.
        """
        complete = await self.start_flush(producer)
        return await complete()

    async def start_flush(self, producer: Emitter) -> Callable[[], Awaitable[int]]:
        """The first half of :meth:`flush_batched`: the changed states are encoded as they
        are now and handed to the producer. Returns the second half: await it for the acks,
        then the store write (and how many). Changes made in between belong to the next
        flush, so the caller need not hold back its writers while the broker answers; it
        must not start another flush before this one completes (a later flush's eviction
        would drop decoded states whose bytes are not in the store yet)."""
        if not self._dirty:
            self._evict()  # states decoded by reads alone
            return _nothing_flushed
        changelog_topic = self._changelog_topic()
        dirty, self._dirty = self._dirty, {}
        changes = [
            (key.encode(), None if value is _DELETED else self.dump(value))
            for key, value in dirty.items()
        ]
        partition_of = self.partition_of
        records = [(changelog_topic, partition_of(k), k, v) for k, v in changes]
        try:
            sent = await producer.send(records)
        except BaseException:
            self._keep_dirty(dirty)
            raise

        async def complete() -> int:
            try:
                delivered = await asyncio.gather(*sent)
            except BaseException:
                self._keep_dirty(dirty)
                raise
            self._store(changes, delivered)
            return len(changes)

        return complete

    def _keep_dirty(self, dirty: dict[str, Any]) -> None:
        """Not persisted: keep them dirty (newer writes made meanwhile win)."""
        dirty.update(self._dirty)
        self._dirty = dirty

    def _store(self, changes: list[tuple[bytes, bytes | None]], delivered: list[Delivered]) -> None:
        """The acknowledged changes into the store."""
        for raw_key, value in changes:
            self._write_now(raw_key, value)
        self._stored_changes(changes)

    def _stored_changes(self, changes: list[tuple[bytes, bytes | None]]) -> None:
        self._forget(raw_key for raw_key, value in changes if value is None)
        self._evict()

    def forget_cache(self) -> None:
        """Drop decoded copies (after a rebalance the table is the truth)."""
        self._cache.clear()
        self._evicted_keys.clear()


async def _nothing_flushed() -> int:
    return 0
