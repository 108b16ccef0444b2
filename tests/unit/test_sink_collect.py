"""``PostgresSink._collect``: one poll of records -> the batch it writes, without I/O.

The history keeps one row per event whichever topic and partition brings it, the latest
state one row per participant (last wins, a tombstone deletes), undecodable records go to the
dead-letter list, offsets are the next offset per partition; and decoding yields to the event
loop between partitions (so the next fetch is sent while this poll decodes).
"""

from __future__ import annotations

import asyncio

import msgspec
from aiokafka import ConsumerRecord, TopicPartition

from pipelines.config import Settings
from pipelines.contracts import LevelEvent, encode
from pipelines.quality import Engine
from pipelines.storage.rows import current_level_row, level_change_row
from pipelines.storage.sink import PostgresSink
from pipelines.storage.writer import CURRENT_LEVELS, LEVEL_CHANGES
from pipelines.testing import Conditions, ScriptedParticipant


def _events() -> list[LevelEvent]:
    """Engine events of four participants, then three later changes each (in time order)."""
    people = [ScriptedParticipant(f"PC{i:02d}") for i in range(4)]
    first = Engine().feed_batch([p.step(Conditions(loss=0.2 * (i % 2))) for i, p in
                                 enumerate(people)])  # fmt: skip
    later = [
        msgspec.structs.replace(
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


def _sink() -> PostgresSink:
    settings = Settings.from_env().with_overrides(
        kafka_bootstrap_servers="localhost:1", database_url="postgresql://localhost:1/none"
    )
    return PostgresSink(settings)


def _records(topic: str, values: list[tuple[bytes, bytes | None]]):
    """Records spread over two partitions by key, as the worker produces them."""
    out: dict[TopicPartition, list[ConsumerRecord]] = {}
    for key, value in values:
        partition = sum(key) % 2
        batch = out.setdefault(TopicPartition(topic, partition), [])
        size = len(value or b"")
        batch.append(
            ConsumerRecord(
                topic, partition, 100 + len(batch), 0, 0, key, value, None, len(key), size, ()
            )
        )
    return out


def test_a_poll_becomes_one_row_per_event_and_the_latest_level_per_participant():
    events = _events()
    assert len({e.participant_sid for e in events}) == 4 and len(events) == 16
    sink = _sink()
    levels_topic, current_topic = sink.topics[0], sink.topics[1]
    keyed = [(e.participant_sid.encode(), encode(e)) for e in events]
    levels = _records(levels_topic, [*keyed, *keyed[:3], (b"PC00", b'{"schema": "nope"}')])
    gone = events[-1].participant_sid
    current = _records(current_topic, [*keyed, (gone.encode(), None)])
    pending = asyncio.run(sink._collect(levels | current))

    batch = pending.batch
    assert sorted(batch.rows[LEVEL_CHANGES]) == sorted(level_change_row(e) for e in events)
    latest = {e.participant_sid: current_level_row(e) for e in events}
    del latest[gone]
    assert sorted(batch.rows[CURRENT_LEVELS]) == sorted(latest.values())
    assert batch.deletes[CURRENT_LEVELS] == [gone]
    assert [(m.value, code) for m, code, _ in pending.bad] == [
        (b'{"schema": "nope"}', "unknown_schema")
    ]
    assert pending.records == 2 * len(events) + 5
    assert pending.offsets == {
        tp: records[-1].offset + 1 for tp, records in (levels | current).items()
    }


def test_decoding_a_poll_lets_other_tasks_run_between_partitions():
    events = _events()
    sink = _sink()
    keyed = [(e.participant_sid.encode(), encode(e)) for e in events]
    records = _records(sink.topics[0], keyed) | _records(sink.topics[1], keyed)
    assert len(records) == 4

    async def main() -> tuple[int, int]:
        ran_at: list[int] = []

        async def fetcher() -> None:  # stands in for aiokafka's fetch task
            ran_at.append(len(sink._level_rows._this))

        task = asyncio.create_task(fetcher())
        pending = await sink._collect(records)
        await task
        return ran_at[0], len(pending.batch.rows[LEVEL_CHANGES])

    decoded_when_it_ran, rows = asyncio.run(main())
    assert rows == len(events)
    assert decoded_when_it_ran < len(events)  # it ran before the whole poll was decoded
