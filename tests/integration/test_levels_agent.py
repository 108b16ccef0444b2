"""The levels agent on the real embedded broker: exact events, dead letters, restarts."""

from __future__ import annotations

import base64
import time
from collections import defaultdict

import msgspec
import pytest

from pipelines.contracts import decode_deadletter, decode_level, encode
from pipelines.contracts.stats import StatsSample
from pipelines.quality import Engine, load_thresholds
from pipelines.testing import Conditions, ScriptedParticipant
from pipelines.testing import scripted_session as scripted_samples


def by_participant(events) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for event in events:
        if not event.event_id.endswith(":stale"):
            out[event.participant_sid].append(msgspec.to_builtins(event))
    return dict(out)


def expected_events(samples: list[StatsSample]) -> dict[str, list[dict]]:
    return by_participant(Engine().feed_batch(samples))


def level_events(records) -> list:
    return [decode_level(r.value) for r in records]


def count_changes(records) -> int:
    """Distinct level changes read: a restart may replay (at-least-once) an event already
    read, and counting the copy would stop a read one event short."""
    return len({e.event_id for e in level_events(records) if not e.event_id.endswith(":stale")})


def test_scripted_participants_get_exactly_the_expected_events(
    worker_settings, kafka_io, start_worker
):
    samples = scripted_samples()
    expected = expected_events(samples)
    total = sum(len(v) for v in expected.values())
    assert total >= 7  # the script really changes levels
    kafka_io.produce(
        worker_settings.topic_stats, [(s.participant_sid.encode(), encode(s)) for s in samples]
    )
    start_worker(worker_settings)
    records = kafka_io.read(
        worker_settings.topic_levels, until=lambda r: count_changes(r) >= total, timeout=90
    )
    assert by_participant(level_events(records)) == expected
    current = kafka_io.read(
        worker_settings.topic_levels_current,
        until=lambda r: len({x.key for x in r}) >= 3,
        timeout=30,
    )
    latest = {r.key.decode(): decode_level(r.value) for r in current if r.value is not None}
    for sid, events in expected.items():
        assert latest[sid].event_id == events[-1]["eventId"]


def test_garbage_goes_to_the_dead_letter_topic_while_valid_traffic_flows(
    worker_settings, kafka_io, start_worker
):
    samples = scripted_samples()
    garbage = [
        (b"PA-x", b'{"schema": "netquality.stats.v1", "roomSid"'),
        (b"PA-x", b'{"schema": "netquality.stats.v7", "roomSid": "R"}'),
        (None, b"\xff\xfe not utf-8 at all"),
        (b"PA-x", encode(samples[0]).replace(b'"seq":1', b'"seq":"one"')),
    ]
    records = [(s.participant_sid.encode(), encode(s)) for s in samples]
    mixed = records[:10] + garbage[:2] + records[10:20] + garbage[2:] + records[20:]
    kafka_io.produce(worker_settings.topic_stats, mixed)
    start_worker(worker_settings)
    letters = kafka_io.read(
        worker_settings.topic_deadletter, until=lambda r: len(r) >= len(garbage), timeout=90
    )
    decoded = [decode_deadletter(r.value) for r in letters]
    assert len(decoded) == len(garbage)
    assert sorted(d.error.code for d in decoded) == sorted(
        ["invalid_json", "unknown_schema", "invalid_json", "invalid_field"]
    )
    originals = {base64.b64decode(d.original) for d in decoded}
    assert originals == {value for _, value in garbage}
    for letter in decoded:
        assert letter.source.topic == worker_settings.topic_stats
        assert letter.source.offset >= 0
        assert letter.original_size == len(base64.b64decode(letter.original))
    expected = expected_events(samples)
    total = sum(len(v) for v in expected.values())
    levels = kafka_io.read(
        worker_settings.topic_levels, until=lambda r: count_changes(r) >= total, timeout=60
    )
    assert by_participant(level_events(levels)) == expected


def test_samples_keyed_by_something_else_are_routed_to_their_participant(
    worker_settings, kafka_io, start_worker
):
    samples = scripted_samples()
    expected = expected_events(samples)
    total = sum(len(v) for v in expected.values())
    # A producer that keys by room must not split a participant's state: samples are re-keyed
    # by participant and come back, in order, on the participant's own partition.
    kafka_io.produce(
        worker_settings.topic_stats, [(s.room_sid.encode(), encode(s)) for s in samples]
    )
    start_worker(worker_settings)
    records = kafka_io.read(
        worker_settings.topic_levels, until=lambda r: count_changes(r) >= total, timeout=90
    )
    assert by_participant(level_events(records)) == expected


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_worker_restarted_mid_stream_resumes_from_table_state(
    store, worker_settings, kafka_io, start_worker, no_staleness
):
    # Resuming is the subject here, not staleness: the restart (and a loaded CI machine) must
    # not turn into participant silence.
    thresholds = no_staleness
    worker_settings = worker_settings.with_overrides(
        store=store, thresholds_file=thresholds, participant_ttl_s=7200.0
    )
    engine = Engine(load_thresholds(thresholds))
    samples = scripted_samples()
    expected = by_participant(engine.feed_batch(samples))
    total = sum(len(v) for v in expected.values())
    half = len(samples) // 2
    first_half = by_participant(Engine(load_thresholds(thresholds)).feed_batch(samples[:half]))
    first_total = sum(len(v) for v in first_half.values())

    kafka_io.produce(
        worker_settings.topic_stats,
        [(s.participant_sid.encode(), encode(s)) for s in samples[:half]],
    )
    worker = start_worker(worker_settings)
    kafka_io.read(
        worker_settings.topic_levels, until=lambda r: count_changes(r) >= first_total, timeout=90
    )
    worker.stop(timeout=30)
    assert worker.returncode == 0, worker.log_tail()

    kafka_io.produce(
        worker_settings.topic_stats,
        [(s.participant_sid.encode(), encode(s)) for s in samples[half:]],
    )
    start_worker(worker_settings)
    records = kafka_io.read(
        worker_settings.topic_levels, until=lambda r: count_changes(r) >= total, timeout=90
    )
    got = by_participant(level_events(records))
    # At-least-once: a replayed event is allowed, but only as an exact copy of one we expect.
    for sid, events in got.items():
        deduped = list({e["eventId"]: e for e in events}.values())
        assert deduped == expected[sid], sid
        for event in events:
            assert event == next(e for e in expected[sid] if e["eventId"] == event["eventId"])


def test_draining_an_old_backlog_invents_no_silence(worker_settings, kafka_io, start_worker):
    """Samples produced two minutes ago, read now, give exactly the offline events: their
    age is not participant silence (the sweep judges silence on stream time)."""
    people = [
        ScriptedParticipant(f"PB{i:03d}", room_sid=f"RB{i % 10}", publish_video=i % 2 == 0)
        for i in range(300)
    ]
    samples = [p.step(Conditions(loss=0.15 if (step + i) % 9 == 0 else 0.0))
               for step in range(10) for i, p in enumerate(people)]  # fmt: skip
    produced_at = int(time.time() * 1000) - 120_000
    kafka_io.produce(
        worker_settings.topic_stats,
        [(s.participant_sid.encode(), encode(s)) for s in samples],
        timestamps=[produced_at + (s.seq * 1000) for s in samples],
    )
    expected = expected_events(samples)
    total = sum(len(v) for v in expected.values())
    start_worker(worker_settings)
    records = kafka_io.read(
        worker_settings.topic_levels, until=lambda r: count_changes(r) >= total, timeout=120
    )
    events = level_events(records)
    assert [e.event_id for e in events if ":" in e.event_id.split(":", 1)[1]] == []
    assert by_participant(events) == expected


def test_worker_refuses_topics_with_another_partition_count(worker_settings, start_worker):
    from pipelines.streaming.topics import PartitionMismatchError, check_co_partitioned

    check_co_partitioned(worker_settings)  # the fixture created them with its own count
    wrong = worker_settings.with_overrides(partitions=worker_settings.partitions + 1)
    with pytest.raises(PartitionMismatchError, match="NETQUALITY_PARTITIONS=5"):
        check_co_partitioned(wrong)
    worker = start_worker(wrong)
    assert worker.wait(timeout=60) != 0
    assert "NETQUALITY_PARTITIONS" in worker.log_tail(lines=60)
