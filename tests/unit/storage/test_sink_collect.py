"""``PostgresSink._collect``: one poll of records -> the batch it writes, without I/O.

Everything comes from the levels topic (the sink no longer reads the current-levels topic):
the history keeps one row per event whichever partition brings it, the latest state one row
per participant (its newest event; a departed event deletes it, as the tombstone after it on
the current topic did), undecodable records go to the dead-letter list, offsets are the next
offset per partition; and decoding yields to the event loop between partitions (so the next
fetch is sent while this poll decodes).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import msgspec
from aiokafka import ConsumerRecord, TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.config import Settings
from pipelines.contracts import LevelEvent, encode
from pipelines.quality import Engine
from pipelines.storage.rows import current_level_row, level_change_row
from pipelines.storage.sink import PostgresSink
from pipelines.storage.writer import CURRENT_LEVELS, LEVEL_CHANGES
from pipelines.testing import Conditions, ScriptedParticipant

replace = msgspec.structs.replace


def _events() -> list[LevelEvent]:
    """Engine events of four participants, then three later changes each (in time order)."""
    people = [ScriptedParticipant(f"PC{i:02d}") for i in range(4)]
    first = Engine().feed_batch([p.step(Conditions(loss=0.2 * (i % 2))) for i, p in
                                 enumerate(people)])  # fmt: skip
    later = [
        replace(
            e,
            event_id=f"{e.participant_sid}:{10 + k}",
            timestamp=e.timestamp + 1_000 * k,
            previous_level=e.level,
            level=k,
        )
        for k in range(1, 4)
        for e in first
    ]
    return first + later


def _departed(e: LevelEvent, after_ms: int = 1_000) -> LevelEvent:
    """The event the worker emits when ``e``'s participant leaves."""
    return replace(
        e, event_id=f"{e.event_id}:departed", timestamp=e.timestamp + after_ms,
        previous_level=e.level, level=0, limited_by="departed", departed=True,
    )  # fmt: skip


def _sink() -> PostgresSink:
    settings = Settings.from_env().with_overrides(
        kafka_bootstrap_servers="localhost:1", database_url="postgresql://localhost:1/none"
    )
    return PostgresSink(settings)


def _records(topic: str, values: list[tuple[bytes, bytes | None]], partitions: int = 2):
    """Records spread over partitions by key, as the worker produces them."""
    out: dict[TopicPartition, list[ConsumerRecord]] = {}
    for key, value in values:
        partition = sum(key) % partitions
        batch = out.setdefault(TopicPartition(topic, partition), [])
        size = len(value or b"")
        batch.append(
            ConsumerRecord(
                topic, partition, 100 + len(batch), 0, 0, key, value, None, len(key), size, ()
            )
        )
    return out


def _keyed(events: list[LevelEvent]) -> list[tuple[bytes, bytes | None]]:
    return [(e.participant_sid.encode(), encode(e)) for e in events]


def test_a_poll_becomes_one_row_per_event_and_the_latest_level_per_participant():
    events = _events()
    assert len({e.participant_sid for e in events}) == 4 and len(events) == 16
    sink = _sink()
    assert sink.settings.topic_levels_current not in sink.topics
    gone = events[-1]
    left = _departed(gone)
    keyed = _keyed([*events, left])
    # The first three events again (a replay: older copies after newer ones), a bad value
    # and a tombstone: neither belongs on the levels topic.
    values = [*keyed, *keyed[:3], (b"PC00", b'{"schema": "nope"}'), (b"PC01", None)]
    records = _records(sink.settings.topic_levels, values)
    pending = asyncio.run(sink._collect(records))

    batch = pending.batch
    assert sorted(batch.rows[LEVEL_CHANGES]) == sorted(level_change_row(e) for e in [*events, left])
    latest = {e.participant_sid: current_level_row(e) for e in events}
    del latest[gone.participant_sid]
    assert sorted(batch.rows[CURRENT_LEVELS]) == sorted(latest.values())
    assert batch.deletes[CURRENT_LEVELS] == [gone.participant_sid]
    assert sorted((m.value or b"", code) for m, code, _ in pending.bad) == [
        (b"", "invalid_json"),  # the tombstone
        (b'{"schema": "nope"}', "unknown_schema"),
    ]
    assert pending.records == len(values)
    assert pending.offsets == {tp: batch[-1].offset + 1 for tp, batch in records.items()}


def test_a_participant_who_leaves_and_comes_back_in_one_poll_is_present():
    first = _events()[0]
    back = replace(first, event_id=f"{first.participant_sid}:99", timestamp=first.timestamp + 5_000)
    sink = _sink()
    records = _records(sink.settings.topic_levels, _keyed([first, _departed(first), back]))
    batch = asyncio.run(sink._collect(records)).batch
    assert batch.rows[CURRENT_LEVELS] == [current_level_row(back)]
    assert batch.deletes[CURRENT_LEVELS] == []


def test_history_keeps_one_row_per_event_id_and_time_as_the_table_key_says():
    """The key of ``level_changes`` is (event id, ts): copies of an event collapse to the
    first, and the same id at another time is another row (no producer of ours does that,
    but the table allows it and the sink must not drop it)."""
    events = _events()
    first = events[0]
    later_same_id = replace(first, timestamp=first.timestamp + 7, level=1)
    copy_of_later = replace(later_same_id, level=2)  # same key: the first copy wins
    sink = _sink()
    values = _keyed([*events, later_same_id, first, copy_of_later, later_same_id])
    batch = asyncio.run(sink._collect(_records(sink.settings.topic_levels, values, 1))).batch
    rows = batch.rows[LEVEL_CHANGES]
    assert sorted(rows) == sorted(map(level_change_row, [*events, later_same_id]))
    keys = [(row[0], row[1]) for row in rows]
    assert len(keys) == len(set(keys)) == len(events) + 1


def test_decoding_a_poll_lets_other_tasks_run_between_partitions():
    events = _events()
    sink = _sink()
    records = _records(sink.settings.topic_levels, _keyed(events), partitions=4)
    assert len(records) == 4
    collected: list[str] = []
    collect_partition = sink._collect_partition

    def counting(topic: str, batch: list[ConsumerRecord], pending: Any) -> None:
        collected.append(topic)
        collect_partition(topic, batch, pending)

    sink._collect_partition = counting  # type: ignore[method-assign]

    async def main() -> tuple[int, int]:
        ran_at: list[int] = []

        async def fetcher() -> None:  # stands in for aiokafka's fetch task
            ran_at.append(len(collected))

        task = asyncio.create_task(fetcher())
        pending = await sink._collect(records)
        await task
        return ran_at[0], len(pending.batch.rows[LEVEL_CHANGES])

    partitions_done_when_it_ran, rows = asyncio.run(main())
    assert rows == len(events)
    assert partitions_done_when_it_ran < len(records)  # it ran before the whole poll


# -- the levels topic alone gives the same current_levels as the current topic did -----------


def _store(table: dict[str, tuple[Any, ...]], batch: Any) -> None:
    """What ``BatchWriter`` does to ``current_levels``: upsert unless older, then delete."""
    for row in batch.rows.get(CURRENT_LEVELS, []):
        stored = table.get(row[0])
        if stored is None or stored[3] <= row[3]:  # (participant_sid, ..., ts at 3)
            table[row[0]] = row
    for sid in batch.deletes.get(CURRENT_LEVELS, []):
        table.pop(sid, None)


def _old_sink_batch(current_topic: list[tuple[bytes, bytes | None]]) -> Any:
    """The old sink's batch from the current-levels topic: last record per key wins, a
    tombstone (the worker sends one right after a departed event) deletes."""
    from pipelines.contracts import decode_level
    from pipelines.storage.writer import Batch

    latest: dict[str, Any] = {}
    for key, value in current_topic:
        latest[key.decode()] = None if value is None else current_level_row(decode_level(value))
    batch = Batch()
    batch.rows[CURRENT_LEVELS] = [r for r in latest.values() if r is not None]
    batch.deletes[CURRENT_LEVELS] = [k for k, r in latest.items() if r is None]
    return batch


@st.composite
def _worker_output(draw: st.DrawFn) -> tuple[list[LevelEvent], list[int]]:
    """Level events of a few participants in emission order (timestamps rising per
    participant; departures, and returns after them), and where the polls split them."""
    base = _events()[:4]
    clock = {e.participant_sid: e.timestamp for e in base}
    out: list[LevelEvent] = []
    for n in range(draw(st.integers(1, 40))):
        e = base[draw(st.integers(0, 3))]
        clock[e.participant_sid] += draw(st.integers(0, 2)) * 1_000  # equal times happen
        event = replace(
            e, event_id=f"{e.participant_sid}:{100 + n}", timestamp=clock[e.participant_sid],
            level=draw(st.integers(0, 5)),
        )  # fmt: skip
        out.append(_departed(event, 0) if draw(st.booleans()) and n % 3 == 0 else event)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(out)), max_size=6))))
    return out, cuts


@settings(max_examples=150, deadline=None)
@given(_worker_output())
def test_current_levels_from_the_levels_topic_equal_those_from_the_current_topic(drawn):
    """Poll by poll, the table built from the levels topic equals the table the old sink
    built from the current topic (each event, plus a tombstone after a departed one)."""
    events, cuts = drawn
    sink = _sink()
    new_table: dict[str, tuple[Any, ...]] = {}
    old_table: dict[str, tuple[Any, ...]] = {}
    for lo, hi in zip([0, *cuts], [*cuts, len(events)], strict=True):
        poll = events[lo:hi]
        levels = _keyed(poll)
        current = []
        for (key, value), e in zip(levels, poll, strict=True):
            current.append((key, value))
            if e.departed:
                current.append((key, None))
        records = _records(sink.settings.topic_levels, levels)
        _store(new_table, asyncio.run(sink._collect(records)).batch)
        _store(old_table, _old_sink_batch(current))
        assert new_table == old_table


def test_an_event_past_the_year_9999_is_dead_lettered_not_a_crash():
    """The contract allows timestamps up to 2**53 - 1 ms; no ``datetime`` holds them."""
    events = _events()
    far = replace(events[0], event_id="PC00:far", timestamp=2**53 - 1)
    sink = _sink()
    records = _records(sink.settings.topic_levels, _keyed([*events, far]))
    pending = asyncio.run(sink._collect(records))
    assert [(m.value, code) for m, code, _ in pending.bad] == [(encode(far), "invalid_field")]
    assert "out of range" in pending.bad[0][2]
    assert sorted(pending.batch.rows[LEVEL_CHANGES]) == sorted(map(level_change_row, events))


def test_polls_gathered_into_one_batch_equal_one_poll_of_them_all():
    """While Postgres writes one batch, the next grows by the polls that arrive meanwhile."""
    events = _events()
    sink = _sink()
    keyed = _keyed([*events, _departed(events[-1])])
    topic = sink.settings.topic_levels
    everything = asyncio.run(sink._collect(_records(topic, keyed)))

    async def in_two_polls():
        first = _records(topic, keyed[:7])
        second = {
            tp: [dataclasses.replace(m, offset=m.offset + 50) for m in batch]
            for tp, batch in _records(topic, keyed[7:]).items()
        }
        pending = await sink._gather(first, sink._new_pending())
        pending = await sink._gather(second, pending)
        sink._seal(pending)
        return pending, first, second

    grown, first, second = asyncio.run(in_two_polls())
    for merge in (LEVEL_CHANGES, CURRENT_LEVELS):
        assert sorted(grown.batch.rows[merge]) == sorted(everything.batch.rows[merge])
    assert grown.batch.deletes == everything.batch.deletes
    assert grown.records == len(keyed)
    assert grown.offsets == {tp: batch[-1].offset + 1 for tp, batch in (first | second).items()}
