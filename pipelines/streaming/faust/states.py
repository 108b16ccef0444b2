"""Keyed states over a changelog-backed Faust table (the seam's :class:`KeyedStates`).

:class:`~pipelines.streaming.buffered_states.BufferedStates` holds the logic (decoded cache,
dirty writes until a flush, the flush's write order); this adapts it to a Faust table: the
memory store's dict is read directly (iterating the Faust table costs ~10 us per key), local
writes are filed under the partition their key belongs to, and a batched flush records the
changelog offsets it reached, as Faust's own ``Table.on_key_set`` would.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from faust.stores.memory import Store as MemoryStore
from faust.types import TP

from pipelines.streaming.buffered_states import BufferedStates
from pipelines.streaming.faust.compat import writing_to_partition
from pipelines.streaming.stage import Delivered, S


class ChangelogStates(BufferedStates[S]):
    """A mapping of key (participant, room, region) to state over a Faust table of bytes.

    Table keys are the participant id's UTF-8 bytes (raw serializer), exactly the stats
    topic's message key, so the default partitioner puts both in the same partition.
    """

    table: MutableMapping[bytes, bytes]

    def _memory_store_data(self) -> dict[bytes, bytes] | None:
        store = getattr(self.table, "data", None)
        if isinstance(store, MemoryStore):
            return store.data  # type: ignore[no-any-return]
        return None

    def _changelog_topic(self) -> str:
        if self.changelog_topic is None:
            self.changelog_topic = self.table.changelog_topic.get_topic_name()  # type: ignore[attr-defined]
        return self.changelog_topic

    def _write_now(self, raw_key: bytes, value: bytes | None) -> None:
        with writing_to_partition(self.source_topic, self.partition_of(raw_key)):
            if value is None:
                self.table.pop(raw_key, None)
            else:
                self.table[raw_key] = value

    def _store(self, changes: list[tuple[bytes, bytes | None]], delivered: list[Delivered]) -> None:
        """The acknowledged changes into the table's store, with their changelog offsets."""
        partition_of = self.partition_of
        store: Any = self.table.data  # type: ignore[attr-defined]
        if isinstance(store, MemoryStore):  # files nothing by partition: a plain dict
            data = store.data
            for raw_key, value in changes:
                if value is None:
                    data.pop(raw_key, None)
                else:
                    data[raw_key] = value
        else:
            for raw_key, value in changes:
                with writing_to_partition(self.source_topic, partition_of(raw_key)):
                    if value is None:
                        store.pop(raw_key, None)
                    else:
                        store[raw_key] = value
        last: dict[Any, int] = {}
        for d in delivered:
            tp = TP(d.topic, d.partition)
            last[tp] = max(last.get(tp, -1), d.last_offset)
        for tp, offset in last.items():
            store.set_persisted_offset(tp, offset)
        self._stored_changes(changes)
