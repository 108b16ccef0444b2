"""Batch envelopes on the stats topic, through a real worker on the real broker."""

from __future__ import annotations

import base64
import json

from kafka import KafkaProducer
from test_levels_agent import by_participant, count_changes, expected_events, level_events

from pipelines.contracts import decode_deadletter, encode
from pipelines.streaming.levels import default_partition
from pipelines.testing import scripted_session

BATCH = "netquality.stats.batch.v1"


def _envelope(items: list[bytes]) -> bytes:
    return b'{"schema":"' + BATCH.encode() + b'","samples":[' + b",".join(items) + b"]}"


def test_envelopes_score_valid_samples_and_dead_letter_each_invalid_one(
    worker_settings, start_worker, kafka_io
):
    """Envelopes grouped by partition, plus a bare sample, two invalid samples inside
    envelopes, and one participant's samples in envelopes on the wrong partition."""
    samples = scripted_session()
    expected = expected_events(samples)
    total = sum(len(v) for v in expected.values())
    partitions = worker_settings.partitions
    part = {s.participant_sid: default_partition(s.participant_sid.encode(), partitions)
            for s in samples}  # fmt: skip
    misplaced = "PA-rc"
    bad_seq = json.loads(encode(samples[0]))
    bad_seq["seq"] = "x"
    bad_seq_raw = json.dumps(bad_seq, separators=(",", ":")).encode()
    not_object = b"17"

    producer = KafkaProducer(bootstrap_servers=kafka_io.bootstrap, linger_ms=5)
    try:
        first, rest = samples[0], samples[1:]
        producer.send(worker_settings.topic_stats, key=first.participant_sid.encode(),
                      value=encode(first))  # fmt: skip
        for start in range(0, len(rest), 6):  # in time order, grouped by partition
            chunk = rest[start : start + 6]
            groups: dict[int, list[bytes]] = {}
            for s in chunk:
                p = part[s.participant_sid]
                if s.participant_sid == misplaced:
                    p = (p + 1) % partitions
                groups.setdefault(p, []).append(encode(s))
            if start == 0:
                groups.setdefault(part["PA-loss"], []).insert(1, bad_seq_raw)
                groups[part["PA-loss"]].append(not_object)
            for p, items in groups.items():
                producer.send(worker_settings.topic_stats, key=b"k", value=_envelope(items),
                              partition=p)  # fmt: skip
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=5)

    start_worker(worker_settings)
    levels = kafka_io.read(
        worker_settings.topic_levels, until=lambda r: count_changes(r) >= total, timeout=90
    )
    assert by_participant(level_events(levels)) == expected

    letters = kafka_io.read(worker_settings.topic_deadletter, until=lambda r: len(r) >= 2,
                            timeout=30)  # fmt: skip
    decoded = sorted((decode_deadletter(r.value) for r in letters), key=lambda d: d.error.message)
    assert len(decoded) == 2
    by_original = {base64.b64decode(d.original): d for d in decoded}
    assert set(by_original) == {bad_seq_raw, not_object}
    assert by_original[bad_seq_raw].error.code == "invalid_field"
    assert "$.samples[1].seq" in by_original[bad_seq_raw].error.message
    assert "$.samples[" in by_original[not_object].error.message
    # The misplaced participant's samples came back as bare samples on its own partition.
    rerouted = sum(1 for s in samples[1:] if s.participant_sid == misplaced)
    stats = kafka_io.read(
        worker_settings.topic_stats,
        until=lambda r: sum(1 for x in r if x.key == misplaced.encode()) >= rerouted,
        timeout=30,
    )
    back = [x for x in stats if x.key == misplaced.encode()]
    assert len(back) == rerouted
    assert {x.partition for x in back} == {part[misplaced]}
    for letter in decoded:
        assert letter.source.topic == worker_settings.topic_stats
        assert letter.source.partition == part["PA-loss"]
        assert letter.source.offset >= 0
