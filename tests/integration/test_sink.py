"""The Postgres sink on the real broker and Postgres: exact rows, replays, outages, rejects."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime

import msgspec
import psycopg

from pipelines.contracts import LevelEvent, decode_level, encode
from pipelines.quality import Engine, load_thresholds
from pipelines.runtime import libpq_url
from pipelines.scorer import score
from pipelines.storage.writer import LEVEL_CHANGES, Batch, BatchWriter
from pipelines.testing import Conditions, ScriptedParticipant, scripted_session
from pipelines.testing.room import four_members, room_samples


def many_level_events(participants: int = 40, steps: int = 20) -> list[LevelEvent]:
    """Level events of a busy room, computed by the engine (so they are realistic)."""
    people = [
        ScriptedParticipant(f"PA{i:03d}", room_sid=f"RM{i % 4}", publish_video=i % 3 != 0,
                            subscribe_audio=1, region=("us1", "eu1")[i % 2])
        for i in range(participants)
    ]  # fmt: skip
    samples = []
    for step in range(steps):
        for i, p in enumerate(people):
            bad = (step + i) % 7 == 0
            samples.append(p.step(Conditions(loss=0.1) if bad else Conditions()))
    return Engine().feed_batch(samples)


def publish_events(kafka_io, settings, events: list[LevelEvent]) -> None:
    """As the worker does, but only to the levels topic: the sink reads nothing else."""
    records = [(e.participant_sid.encode(), encode(e)) for e in events]
    kafka_io.produce(settings.topic_levels, records)


def test_scripted_session_through_worker_and_sink_gives_exact_rows(
    sink_settings, kafka_io, start_worker, sinks, no_staleness, db_query, wait_until, row_count
):
    query, wait_for, count = db_query, wait_until, row_count
    sink_settings = sink_settings.with_overrides(thresholds_file=no_staleness)
    samples = scripted_session()
    expected = Engine(load_thresholds(no_staleness)).feed_batch(samples)
    kafka_io.produce(
        sink_settings.topic_stats, [(s.participant_sid.encode(), encode(s)) for s in samples]
    )
    start_worker(sink_settings)
    sinks(sink_settings)
    url = sink_settings.database_url
    wait_for(lambda: count(url, "level_changes") >= len(expected), what="history rows")
    rows = query(
        url,
        "SELECT event_id, participant_sid, level, previous_level, audio_send, audio_recv,"
        " video_send, video_recv, limited_by, departed, ts FROM level_changes ORDER BY event_id",
    )
    want = sorted(
        (
            e.event_id, e.participant_sid, e.level, e.previous_level, e.audio.send,
            e.audio.recv, e.video.send, e.video.recv, e.limited_by, e.departed,
            datetime.fromtimestamp(e.timestamp / 1000, UTC),
        )
        for e in expected
    )  # fmt: skip
    assert rows == want
    last = {}
    for e in expected:
        last[e.participant_sid] = e
    wait_for(
        lambda: query(url, "SELECT count(*) FROM current_levels")[0][0] == len(last),
        what="current levels",
    )
    current = dict(query(url, "SELECT participant_sid, event_id FROM current_levels"))
    assert current == {sid: e.event_id for sid, e in last.items()}
    stats = query(url, "SELECT stats FROM level_changes WHERE level < 5 LIMIT 1")[0][0]
    assert set(stats) == {"audio", "video"}


def test_replaying_the_topics_twice_changes_nothing(
    sink_settings, kafka_io, sinks, db_query, wait_until, row_count
):
    query, wait_for, count = db_query, wait_until, row_count
    events = many_level_events()
    publish_events(kafka_io, sink_settings, events)
    url = sink_settings.database_url
    first = sinks(sink_settings)
    wait_for(lambda: count(url, "level_changes") == len(events), what="first pass")
    first.stop()
    snapshot = query(url, "SELECT event_id, level, ts FROM level_changes ORDER BY 1")
    current = query(url, "SELECT participant_sid, event_id FROM current_levels ORDER BY 1")
    for replay in range(2):
        settings = sink_settings.with_overrides(sink_group=f"{sink_settings.sink_group}-r{replay}")
        sink = sinks(settings)
        wait_for(
            lambda s=sink: s.sink.counts.rows["level_changes"] >= len(events),
            what="replay consumed everything",
        )
        sink.stop()
        assert query(url, "SELECT event_id, level, ts FROM level_changes ORDER BY 1") == snapshot
        assert query(url, "SELECT participant_sid, event_id FROM current_levels ORDER BY 1") == (
            current
        )


def test_database_outage_during_a_load_loses_no_row(
    sink_settings, kafka_io, sinks, postgres, db_query, wait_until, row_count
):
    query, wait_for, count = db_query, wait_until, row_count
    events = many_level_events(participants=60)
    third = len(events) // 3
    url = sink_settings.database_url
    sink = sinks(sink_settings)
    publish_events(kafka_io, sink_settings, events[:third])
    wait_for(lambda: count(url, "level_changes") == third, what="first chunk")
    postgres.stop()
    try:
        publish_events(kafka_io, sink_settings, events[third : 2 * third])
        time.sleep(3.0)  # the sink is retrying against a database that is down
    finally:
        postgres.start()
    publish_events(kafka_io, sink_settings, events[2 * third :])
    wait_for(lambda: count(url, "level_changes") == len(events), what="all rows after outage")
    ids = {e.event_id for e in events}
    assert {r[0] for r in query(url, "SELECT event_id FROM level_changes")} == ids
    assert sink.sink.counts.retries > 0


def test_a_row_the_database_refuses_is_isolated_and_the_rest_is_written(migrated, row_count):
    count = row_count
    good = many_level_events(participants=5, steps=3)
    from pipelines.storage.rows import level_change_row

    rows = [level_change_row(e) for e in good]
    broken = list(rows[1])
    broken[5] = 9  # level 9 passes no contract, but reaches the database here on purpose
    rows[1] = tuple(broken)
    with psycopg.connect(libpq_url(migrated.url), autocommit=True) as conn:
        batch = Batch()
        for row in rows:
            batch.add(LEVEL_CHANGES, row)
        rejects = BatchWriter(conn).write(batch)
    assert [r.row[0] for r in rejects] == [rows[1][0]]
    assert rejects[0].code == "db_rejected" and "level_range" in rejects[0].message
    assert count(migrated.url, "level_changes") == len(rows) - 1


def test_rollups_are_upserted_by_room_or_region_and_minute(
    sink_settings, kafka_io, sinks, db_query, wait_until, row_count
):
    query, wait_for, count = db_query, wait_until, row_count
    from pipelines.quality.rollups import MinuteRollup

    minute = 1_763_899_980_000

    def rollup(scope: str, scope_id: str, seconds5: float, revision: int) -> MinuteRollup:
        return MinuteRollup(
            scope=scope, scope_id=scope_id, region="us1", minute=minute,
            seconds_at_level=(0.0, 0.0, 30.0, 0.0, 0.0, seconds5), participants_seen=2,
            min_level=2, avg_level=(2 * 30 + 5 * seconds5) / (30 + seconds5), changes=3,
            revision=revision,
        )  # fmt: skip

    records = [
        (b"room:RM1", rollup("room", "RM1", 60.0, 0).encode()),
        (b"room:RM1", rollup("room", "RM1", 90.0, 1).encode()),  # a late correction
        (b"region:us1", rollup("region", "us1", 90.0, 0).encode()),
    ]
    kafka_io.produce(sink_settings.topic_rollups, records)
    sinks(sink_settings)
    url = sink_settings.database_url
    wait_for(lambda: count(url, "region_rollups") == 1, what="region rollup row")
    wait_for(
        lambda: query(url, "SELECT seconds_at_level_5 FROM room_rollups")[0][0] == 90.0,
        what="corrected room minute",
    )
    room = query(
        url,
        "SELECT room_sid, region, seconds_at_level_2, seconds_at_level_5, participants_seen,"
        " min_level, changes, minute FROM room_rollups",
    )
    assert room == [("RM1", "us1", 30.0, 90.0, 2, 2, 3, datetime.fromtimestamp(minute / 1000, UTC))]


def test_dead_letters_are_counted_per_hour_topic_and_code_exactly_once(
    sink_settings, kafka_io, sinks, db_query, wait_until
):
    from pipelines.contracts import make_dead_letter

    hour = 1_763_899_200_000  # an hour boundary (ms)

    def letter(topic: str, code: str, minute: int) -> bytes:
        dead = make_dead_letter(
            b"{", topic=topic, partition=0, offset=minute, key=None, code=code, message=code,
            now_ms=hour + minute * 60_000,
        )  # fmt: skip
        return encode(dead)

    letters = [
        letter("netquality.stats.v1", "invalid_json", 1),
        letter("netquality.stats.v1", "invalid_json", 2),
        letter("netquality.stats.v1", "unknown_schema", 3),
        letter("netquality.levels.v1", "db_rejected", 4),
        letter("netquality.stats.v1", "invalid_json", 61),  # the next hour
    ]
    kafka_io.produce(sink_settings.topic_deadletter, [(None, v) for v in letters])
    url = sink_settings.database_url
    statement = (
        "SELECT extract(epoch FROM hour)::bigint * 1000, topic, code, count"
        " FROM deadletter_counts ORDER BY 1, 2, 3"
    )
    want = [
        (hour, "netquality.levels.v1", "db_rejected", 1),
        (hour, "netquality.stats.v1", "invalid_json", 2),
        (hour, "netquality.stats.v1", "unknown_schema", 1),
        (hour + 3_600_000, "netquality.stats.v1", "invalid_json", 1),
    ]
    first = sinks(sink_settings)
    wait_until(lambda: db_query(url, statement) == want, what="dead-letter counts")
    first.stop()
    replay = sinks(sink_settings.with_overrides(sink_group=sink_settings.sink_group + "-replay"))
    wait_until(lambda: replay.sink.counts.batches >= 1, what="replay consumed the topic")
    replay.stop()
    assert db_query(url, statement) == want  # a replay under a new group counts nothing twice


def test_a_level_events_cause_is_stored_in_history_and_current_state(
    sink_settings, kafka_io, sinks, db_query, wait_until, row_count
):
    """Whose network (issue 27): after a reload the dashboards read the cause from here."""
    members = four_members()
    members[1].uplink.append((20, 45, 0.20))  # PA02's uplink: its subscribers name it
    out = io.BytesIO()
    score(room_samples(members, 40), Engine(), out.write)
    events = [decode_level(line) for line in out.getvalue().splitlines()]
    named = [e for e in events if e.cause is not None]
    assert named
    publish_events(kafka_io, sink_settings, events)
    sinks(sink_settings)
    url = sink_settings.database_url
    wait_until(lambda: row_count(url, "level_changes") >= len(events), what="history rows")
    rows = dict(db_query(url, "SELECT event_id, cause FROM level_changes"))
    for e in events:
        want = None if e.cause is None else msgspec.to_builtins(e.cause)
        assert rows[e.event_id] == want, e.event_id
    last = {e.participant_sid: e for e in events}
    wait_until(
        lambda: db_query(url, "SELECT count(*) FROM current_levels")[0][0] == len(last),
        what="current levels",
    )
    current = dict(db_query(url, "SELECT participant_sid, cause FROM current_levels"))
    assert current == {
        sid: None if e.cause is None else msgspec.to_builtins(e.cause) for sid, e in last.items()
    }
