"""Migration 0004 (``level_changes.stats`` as ``json``, no participant index) against the real
Postgres: the history the sink writes reads back exactly, replays still write no duplicate, and
the migration goes down to 0003 and up again keeping every row."""

from __future__ import annotations

import json
from typing import Any

import psycopg
from sqlalchemy import text

from pipelines.contracts import LevelEvent
from pipelines.quality import Engine
from pipelines.runtime import libpq_url
from pipelines.storage import migrate
from pipelines.storage.rows import level_change_row, stats_json
from pipelines.storage.writer import LEVEL_CHANGES, Batch, BatchWriter
from pipelines.testing import Conditions, ScriptedParticipant

PARTICIPANT_INDEX = "ix_level_changes_participant_sid_ts"


def level_events() -> list[LevelEvent]:
    people = [ScriptedParticipant(f"PJ{i:03d}", room_sid=f"RM{i % 2}") for i in range(6)]
    samples = [
        p.step(Conditions(loss=0.15, rtt=0.3) if (step + i) % 3 == 0 else Conditions())
        for step in range(8)
        for i, p in enumerate(people)
    ]
    return Engine().feed_batch(samples)


def history_batch(events: list[LevelEvent]) -> Batch:
    batch = Batch()
    for e in events:
        batch.add(LEVEL_CHANGES, level_change_row(e))
    return batch


def column_type(conn: Any) -> str:
    return conn.execute(
        text(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'level_changes'::regclass AND attname = 'stats'"
        )
    ).scalar_one()


def has_index(conn: Any, name: str) -> bool:
    return bool(conn.execute(text("SELECT to_regclass(:n) IS NOT NULL"), {"n": name}).scalar_one())


def test_history_stats_are_stored_as_sent_and_a_replay_adds_nothing(migrated):
    events = level_events()
    assert any(e.level < 5 for e in events)  # some events carry limiting stats
    with psycopg.connect(libpq_url(migrated.url), autocommit=True) as conn:
        writer = BatchWriter(conn)
        assert writer.write(history_batch(events)) == []  # the direct COPY
        assert writer.replayed_batches == 0
        assert writer.write(history_batch(events)) == []  # the staged ON CONFLICT merge
        assert writer.replayed_batches == 1
        stored = dict(conn.execute("SELECT event_id, stats::text FROM level_changes"))
        loaded = dict(conn.execute("SELECT event_id, stats FROM level_changes"))
    assert len(stored) == len(events)  # each event once, after the replay too
    for e in events:
        assert stored[e.event_id] == stats_json(e)  # the text as the sink sent it
        assert loaded[e.event_id] == json.loads(stats_json(e))  # read back as objects


def test_0004_goes_down_and_up_keeping_the_history(db):
    migrate.upgrade(db.url, "0003_analyst_views")
    stats = {"video": {"sendStats": {"bandwidth": {"level": 3, "actual": 400000.0}}}}
    insert = text(
        "INSERT INTO level_changes (event_id, ts, room_sid, participant_sid, region, level,"
        " previous_level, stats) VALUES (:id, now(), 'RM1', 'PA1', 'us1', 3, 5, :stats)"
    )
    with db.engine.begin() as conn:
        assert column_type(conn) == "jsonb"
        conn.execute(insert, {"id": "PA1:1", "stats": json.dumps(stats)})
    migrate.upgrade(db.url)
    with db.engine.begin() as conn:
        assert column_type(conn) == "json"
        assert not has_index(conn, PARTICIPANT_INDEX)
        assert has_index(conn, "ix_level_changes_room_sid_ts")
        assert has_index(conn, "ix_level_changes_region_ts")
        conn.execute(insert, {"id": "PA1:2", "stats": json.dumps(stats)})
    migrate.downgrade(db.url, "0003_analyst_views")
    with db.engine.begin() as conn:
        assert column_type(conn) == "jsonb"
        assert has_index(conn, PARTICIPANT_INDEX)
        rows = conn.execute(text("SELECT event_id, stats FROM level_changes ORDER BY 1")).all()
    assert rows == [("PA1:1", stats), ("PA1:2", stats)]
    migrate.upgrade(db.url)
    assert migrate.current(db.url) == migrate.head()


def test_a_column_type_changed_under_a_running_writer_refuses_no_row(migrated):
    """A migration between two batches (here ``stats`` back to jsonb, as a downgrade does)
    must not turn the next batches into dead letters: the writer notices, and writes again."""
    events = level_events()
    half = len(events) // 2
    with psycopg.connect(libpq_url(migrated.url), autocommit=True) as conn:
        writer = BatchWriter(conn)
        assert writer.write(history_batch(events[:half])) == []
        conn.execute("ALTER TABLE level_changes ALTER COLUMN stats TYPE jsonb")
        assert writer.write(history_batch(events)) == []  # half replayed: the staged merge too
        assert writer.replayed_batches == 1
        stored = dict(conn.execute("SELECT event_id, stats FROM level_changes"))
    assert stored == {e.event_id: json.loads(stats_json(e)) for e in events}
