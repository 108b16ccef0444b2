"""The sink's fast write paths on the real Postgres and broker: direct COPY of new history,
the staged merge of replayed rows, upserts that leave identical rows alone, binary COPY of
every table, and current levels from the levels topic alone."""

from __future__ import annotations

from typing import Any

import msgspec
import psycopg

from pipelines.contracts import AlertEvent, LevelEvent, decode_alert, encode
from pipelines.quality import Engine
from pipelines.quality.rollups import MinuteRollup
from pipelines.runtime import libpq_url
from pipelines.storage.rows import alert_row, current_level_row, level_change_row, rollup_row
from pipelines.storage.writer import (
    ALERTS,
    CURRENT_LEVELS,
    LEVEL_CHANGES,
    REGION_ROLLUPS,
    ROOM_ROLLUPS,
    Batch,
    BatchWriter,
)
from pipelines.testing import Conditions, ScriptedParticipant

TABLES = ("level_changes", "current_levels", "alerts", "room_rollups", "region_rollups")
ALERT = (
    b'{"schema": "netquality.alert.v1", "alertId": "room_degraded:RM1:1763900000000",'
    b' "kind": "room_degraded", "status": "opened", "region": "us1", "roomSid": "RM1",'
    b' "timestamp": 1763900000000, "openedAt": 1763900000000, "participants": 4,'
    b' "degraded": 3, "share": 0.75}'
)


def level_events(participants: int = 12, steps: int = 12) -> list[LevelEvent]:
    people = [ScriptedParticipant(f"PW{i:03d}", room_sid=f"RM{i % 3}") for i in range(participants)]
    samples = [
        p.step(Conditions(loss=0.12) if (step + i) % 4 == 0 else Conditions())
        for step in range(steps)
        for i, p in enumerate(people)
    ]
    return Engine().feed_batch(samples)


def rollup(scope: str, scope_id: str, seconds5: float) -> MinuteRollup:
    return MinuteRollup(
        scope=scope, scope_id=scope_id, region="us1", minute=1_763_899_980_000,
        seconds_at_level=(0.0, 0.0, 30.0, 0.0, 0.0, seconds5), participants_seen=2,
        min_level=2, avg_level=3.5, changes=3, revision=0,
    )  # fmt: skip


def batch_of(events: list[LevelEvent], alert: AlertEvent, seconds5: float = 60.0) -> Batch:
    """What the sink builds from one poll: history, latest level per participant, the rest."""
    batch = Batch()
    latest: dict[str, Any] = {}
    for e in events:
        batch.add(LEVEL_CHANGES, level_change_row(e))
        latest[e.participant_sid] = current_level_row(e)
    batch.rows[CURRENT_LEVELS] = list(latest.values())
    batch.add(ALERTS, alert_row(alert))
    batch.add(ROOM_ROLLUPS, rollup_row(rollup("room", "RM1", seconds5)))
    batch.add(REGION_ROLLUPS, rollup_row(rollup("region", "us1", seconds5)))
    return batch


def row_versions(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row with its physical version (ctid, xmin): a rewrite changes both."""
    return {
        t: conn.execute(f"SELECT ctid::text, xmin::text, * FROM {t} ORDER BY 3, 4").fetchall()
        for t in TABLES
    }


def test_a_replayed_batch_adds_no_row_and_rewrites_none(migrated):
    events = level_events()
    batch = batch_of(events, decode_alert(ALERT))
    with psycopg.connect(libpq_url(migrated.url), autocommit=True) as conn:
        first = BatchWriter(conn)
        assert first.write(batch) == []
        assert first.replayed_batches == 0  # all new: straight COPY, no staging
        before = row_versions(conn)
        assert len(before["level_changes"]) == len(events)
        assert all(len(before[t]) >= 1 for t in TABLES)
        stats = conn.execute("SELECT stats FROM level_changes WHERE level < 5 LIMIT 1").fetchone()
        payload = conn.execute("SELECT payload FROM alerts").fetchone()
        replay = BatchWriter(conn)
        assert replay.write(batch) == []
        assert replay.replayed_batches == 1
        assert row_versions(conn) == before
    assert stats is not None and set(stats[0]) == {"audio", "video"}
    assert payload is not None and payload[0] == msgspec.json.decode(ALERT)


def test_a_batch_mixing_new_and_replayed_rows_stores_each_row_once(migrated):
    events = level_events()
    half = len(events) // 2
    alert = decode_alert(ALERT)
    later = msgspec.structs.replace(
        alert, status="updated", timestamp=alert.timestamp + 60_000, degraded=4, share=1.0
    )
    with psycopg.connect(libpq_url(migrated.url), autocommit=True) as conn:
        BatchWriter(conn).write(batch_of(events[:half], alert))
        writer = BatchWriter(conn)
        assert writer.write(batch_of(events, later, seconds5=90.0)) == []
        assert writer.replayed_batches == 1
        history = conn.execute("SELECT event_id FROM level_changes").fetchall()
        current = dict(conn.execute("SELECT participant_sid, event_id FROM current_levels"))
        alerts = conn.execute("SELECT status, degraded, share FROM alerts").fetchall()
        rollups = conn.execute("SELECT seconds_at_level_5 FROM room_rollups").fetchall()
    assert sorted(r[0] for r in history) == sorted(e.event_id for e in events)
    latest = {e.participant_sid: e.event_id for e in events}
    assert current == latest
    assert alerts == [("updated", 4, 1.0)]
    assert rollups == [(90.0,)]


def test_latest_state_moves_only_forward_and_only_when_it_differs(migrated):
    old = level_events(participants=1, steps=2)[0]
    new = msgspec.structs.replace(
        old, event_id=f"{old.participant_sid}:99", timestamp=old.timestamp + 5_000
    )
    changed = msgspec.structs.replace(new, level=(new.level + 1) % 6)  # same time, new content
    with psycopg.connect(libpq_url(migrated.url), autocommit=True) as conn:
        writer = BatchWriter(conn)

        def store(event: LevelEvent) -> tuple[Any, ...]:
            batch = Batch()
            batch.add(CURRENT_LEVELS, current_level_row(event))
            assert writer.write(batch) == []
            got = conn.execute("SELECT ctid::text, xmin::text, event_id, level FROM current_levels")
            return got.fetchone()  # type: ignore[return-value]

        stored = store(new)
        assert store(old) == stored  # older: ignored
        assert store(new) == stored  # identical: not rewritten
        rewritten = store(changed)  # same time, different content: replaced
    assert rewritten[2:] == (changed.event_id, changed.level)
    assert rewritten[:2] != stored[:2]


def test_the_sink_reads_levels_only_a_departure_deletes_and_a_tombstone_is_dead_lettered(
    sink_settings, kafka_io, sinks, db_query, wait_until, row_count
):
    """Current levels come from the levels topic alone: the newest event per participant (a
    replayed older copy after it changes nothing), a departed event deletes the row, as the
    tombstone the worker sends after it on the current topic did. The current topic is not
    read: garbage there is not even dead-lettered."""
    events = level_events(participants=8, steps=6)
    replayed = events[:5]
    # Leaves after its last event; none of its events is among the replayed copies (a copy
    # polled after the departure would bring the row back: the worker's own replays always
    # end with the departure again).
    gone = [e for e in events if e.participant_sid not in {r.participant_sid for r in replayed}][-1]
    left = msgspec.structs.replace(
        gone, event_id=f"{gone.event_id}:departed", timestamp=gone.timestamp + 1_000,
        level=0, previous_level=gone.level, limited_by="departed", departed=True,
    )  # fmt: skip
    records = [(e.participant_sid.encode(), encode(e)) for e in [*events, left]]
    levels = [*records, (b"PW000", None), *records[: len(replayed)]]
    kafka_io.produce(sink_settings.topic_levels, levels)
    kafka_io.produce(sink_settings.topic_levels_current, [(b"PW001", b"not a level event")])
    url = sink_settings.database_url
    sink = sinks(sink_settings)
    # >=: the sink also consumes the dead letter it sends (the deadletter topic is counted
    # per hour), so the count can pass len(levels) + 1 between two looks.
    wait_until(lambda: sink.sink.counts.records >= len(levels), what="every record committed")
    sink.stop()
    assert row_count(url, "level_changes") == len(events) + 1
    assert db_query(url, "SELECT count(DISTINCT event_id) FROM level_changes")[0][0] == (
        len(events) + 1
    )
    latest = {e.participant_sid: e.event_id for e in events}
    del latest[gone.participant_sid]
    assert dict(db_query(url, "SELECT participant_sid, event_id FROM current_levels")) == latest
    assert sink.sink.counts.dead_letters == 1
    letters = kafka_io.read(sink_settings.topic_deadletter, until=lambda got: len(got) >= 1)
    assert len(letters) == 1
    assert b"invalid_json" in letters[0].value and b"tombstone" in letters[0].value
