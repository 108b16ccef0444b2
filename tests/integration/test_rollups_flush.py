"""A graceful stop writes the minute in progress: a short call's time is all in the report.

Issue 24: a 94 s demo reported half its time, because the rollups stage only writes a minute
once the stream's clock has passed it, and the demo stops the worker before that. Here a real
worker and sink take ~20 s of live traffic (samples produced as they happen), the worker is
stopped gracefully (SIGTERM), and the rollup rows must hold every participant-second up to
the stop, in the room and in its region alike.
"""

from __future__ import annotations

import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from pipelines.contracts import encode
from pipelines.streaming.rollups import levels_by_room_topic
from pipelines.testing import ScriptedParticipant


def stage_caught_up(settings, topic: str) -> bool:
    """The worker group has committed every record of ``topic`` (Faust commits what it has
    processed, every few seconds)."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        committed = admin.list_group_offsets(settings.app_id).get(settings.app_id, {})
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
    finally:
        admin.close()
        consumer.close()
    done = {tp: getattr(meta, "offset", -1) for tp, meta in committed.items()}
    return bool(ends) and all(done.get(tp, -1) >= end for tp, end in ends.items() if end)


PARTICIPANTS = 3
SECONDS = 20
LATENCY_S = 3.0
LEVEL_SECONDS = " + ".join(f"seconds_at_level_{n}" for n in range(6))


def test_a_graceful_stop_writes_the_open_minute(
    sink_settings, kafka_io, start_worker, sinks, db_query, wait_until, no_staleness
):
    settings = sink_settings.with_overrides(thresholds_file=no_staleness)
    url = settings.database_url
    worker = start_worker(settings)
    sink = sinks(settings)
    warm = ScriptedParticipant("PW", room_sid="RW", region="warm", start_ms=int(time.time() * 1000))
    kafka_io.produce(settings.topic_stats, [(b"PW", encode(warm.step()))])
    assert kafka_io.read(settings.topic_levels, until=bool, timeout=120), "no worker"
    start = int(time.time() * 1000)
    people = [ScriptedParticipant(f"PF{i}", room_sid="RF-short", region="fl1", start_ms=start)
              for i in range(PARTICIPANTS)]  # fmt: skip
    for second in range(1, SECONDS + 1):  # live: each second's samples when they happen
        time.sleep(max(0.0, (start + second * 1000) / 1000 - time.time()))
        records = [(p.participant_sid.encode(), encode(p.step())) for p in people]
        at = start + second * 1000
        kafka_io.produce(settings.topic_stats, records, timestamps=[at] * PARTICIPANTS)
    # A graceful stop writes what the room stage has read: let it read the last second.
    by_room = levels_by_room_topic(settings)
    wait_until(lambda: stage_caught_up(settings, by_room), 120, "the room stage to catch up")
    first, last = start + 1000, start + SECONDS * 1000
    worker.stop(timeout=60)
    stopped = time.time() * 1000
    assert "flushed" in worker.log_tail(200), worker.log_tail()

    def total(table: str, key: str, value: str) -> float:
        rows = db_query(url, f"SELECT coalesce(sum({LEVEL_SECONDS}), 0) FROM {table}"
                             f" WHERE {key} = '{value}'")  # fmt: skip
        return float(rows[0][0])

    # The flush counts presence up to the stream clock, which trails the wall clock by the
    # pipeline's own latency (the levels agent, the by-room hop): a few seconds at most.
    lower = PARTICIPANTS * ((last - first) / 1000 - LATENCY_S)
    upper = PARTICIPANTS * (stopped - first) / 1000
    try:
        wait_until(lambda: total("room_rollups", "room_sid", "RF-short") >= lower, 60, "rows")
    except AssertionError:
        rows = db_query(url, "SELECT room_sid, minute, seconds_at_level_5 FROM room_rollups")
        raise AssertionError(f"want >= {lower} participant-seconds, rows {rows}") from None
    wait_until(lambda: total("region_rollups", "region", "fl1") >= lower, 60, "the region rows")
    sink.stop()
    room = total("room_rollups", "room_sid", "RF-short")
    region = total("region_rollups", "region", "fl1")
    assert lower <= room <= upper, (lower, room, upper)
    assert region == room
