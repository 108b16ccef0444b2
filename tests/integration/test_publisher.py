"""StatsPublisher and `netquality publish` against the real embedded broker (and worker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import msgspec
import pytest

from pipelines.clients import BATCH_SCHEMA, InvalidSampleError, StatsPublisher, partition_for
from pipelines.contracts import decode_level, decode_stats, encode
from pipelines.demo_data import RTCSTATS
from pipelines.quality import Engine
from pipelines.runtime.process import free_port
from pipelines.testing import scripted_session

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_unenveloped_samples_reach_the_worker_and_are_scored_exactly(
    worker_settings, kafka_io, start_worker
):
    samples = scripted_session()
    expected = [e for e in Engine().feed_batch(samples) if not e.event_id.endswith(":stale")]
    start_worker(worker_settings)
    with StatsPublisher.from_settings(worker_settings, envelope=False) as publisher:
        for i, sample in enumerate(samples):
            # the three input forms: a model, a dict, raw JSON bytes
            form = [sample, msgspec.to_builtins(sample), encode(sample)][i % 3]
            assert publisher.send(form)
    report = publisher.final_report
    assert report is not None and report.ok
    assert report.sent == report.messages == len(samples)
    records = kafka_io.read(
        worker_settings.topic_levels,
        until=lambda r: sum(not decode_level(x.value).event_id.endswith(":stale") for x in r)
        >= len(expected),
        timeout=90,
    )
    got = sorted(
        (e.event_id, e.level) for e in map(decode_level, (r.value for r in records))
        if not e.event_id.endswith(":stale")
    )
    assert got == sorted((e.event_id, e.level) for e in expected)
    stats = kafka_io.read(worker_settings.topic_stats, until=lambda r: len(r) >= len(samples))
    assert all(r.key == decode_stats(r.value).participant_sid.encode() for r in stats)


def test_envelopes_group_samples_by_partition_within_the_limits(worker_settings, kafka_io):
    participants = [f"PA-{i:03d}" for i in range(40)]
    samples = []
    for seq in range(1, 6):
        for sid in participants:
            s = scripted_session()[0]
            samples.append(msgspec.structs.replace(s, participant_sid=sid, seq=seq))
    with StatsPublisher.from_settings(
        worker_settings, max_batch=17, max_batch_bytes=8 * 1024, linger_ms=10_000
    ) as publisher:
        for s in samples:
            publisher.send(s)
    report = publisher.final_report
    assert report is not None and report.ok and report.sent == len(samples)
    records = kafka_io.read(
        worker_settings.topic_stats,
        until=lambda r: sum(len(json.loads(x.value)["samples"]) for x in r) >= len(samples),
    )
    assert len(records) == report.messages
    seen: dict[str, list[int]] = defaultdict(list)
    partitions = worker_settings.partitions
    for record in records:
        envelope = json.loads(record.value)
        assert envelope["schema"] == BATCH_SCHEMA
        inner = [decode_stats(json.dumps(s)) for s in envelope["samples"]]
        assert 1 <= len(inner) <= 17 and len(record.value) <= 8 * 1024
        assert record.key == inner[0].participant_sid.encode()
        assert {partition_for(s.participant_sid, partitions) for s in inner} == {record.partition}
        for s in inner:
            seen[s.participant_sid].append(s.seq)
    assert dict(seen) == {sid: [1, 2, 3, 4, 5] for sid in participants}
    assert len(records) > partitions  # the limits really split partitions into several envelopes


def test_invalid_samples_are_reported_with_reasons_and_not_sent(worker_settings, kafka_io):
    good = scripted_session()[0]
    with StatsPublisher.from_settings(worker_settings, envelope=False) as publisher:
        assert publisher.send(good)
        assert not publisher.send(b'{"schema": "netquality.stats.v9"}')
        assert not publisher.send({**msgspec.to_builtins(good), "seq": -1})
        assert not publisher.send(b"not json")
        report = publisher.flush()
        publisher.on_invalid = "raise"  # recorded by default, raised on request
        with pytest.raises(InvalidSampleError, match="sample #4 rejected: invalid_json"):
            publisher.send(b"{")
    assert report.sent == 1
    assert [(r.index, r.code) for r in report.rejected] == [
        (1, "unknown_schema"), (2, "invalid_field"), (3, "invalid_json")]
    assert "$.seq" in report.rejected[1].message
    records = kafka_io.read(worker_settings.topic_stats, until=lambda r: len(r) >= 1, timeout=5)
    assert [decode_stats(r.value) for r in records] == [good]


def test_an_unreachable_broker_is_reported_as_failed_delivery():
    publisher = StatsPublisher(
        f"127.0.0.1:{free_port()}", envelope=False, max_block_ms=300, api_version=(2, 5),
        request_timeout_ms=500,
    )
    try:
        publisher.send(scripted_session()[0])  # False if it fails at once, else the flush fails
        report = publisher.flush(timeout_s=2)
    finally:
        publisher.close(timeout_s=1)
    assert report.sent == 0 and len(report.failed) == 1
    assert report.failed[0].samples == 1 and report.failed[0].error
    assert not report.ok


def test_netquality_publish_cli_sends_valid_lines_and_summarises_rejections(
    worker_settings, kafka_io, tmp_path
):
    samples = scripted_session()[:20]
    lines = [encode(s) for s in samples]
    lines.insert(5, b'{"schema": "netquality.stats.v1", "roomSid": ""}')
    lines.insert(9, b"garbage")
    source = tmp_path / "samples.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    env = {**os.environ, **worker_settings.as_env()}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "publish", str(source)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "sent 20" in done.stderr and "rejected 2" in done.stderr
    assert "samples.jsonl:6: rejected: invalid_field" in done.stderr
    assert "samples.jsonl:10: rejected: invalid_json" in done.stderr
    records = kafka_io.read(
        worker_settings.topic_stats,
        until=lambda r: sum(len(json.loads(x.value)["samples"]) for x in r) >= 20,
    )
    got = [decode_stats(json.dumps(s)) for r in records for s in json.loads(r.value)["samples"]]
    assert sorted(got, key=lambda s: (s.participant_sid, s.seq)) == sorted(
        samples, key=lambda s: (s.participant_sid, s.seq))

    dump = RTCSTATS / "chrome-relay"
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "publish", "--format", "rtcstats",
         "--no-envelope", "--region", "eu1", str(dump)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "sent 13 in 13 messages, rejected 0, failed 0" in done.stderr

    snapshot = FIXTURES / "getstats" / "mock-spec-stats-1.json"
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "publish", "--format", "getstats",
         str(snapshot), str(broken)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "sent 1 in 1 messages, rejected 1 (invalid_report 1)" in done.stderr
    assert "broken.json:1: rejected: invalid_report" in done.stderr


def test_threads_can_share_one_publisher(worker_settings, kafka_io):
    import threading

    base = scripted_session()[0]
    per_thread = 250

    def work(publisher: StatsPublisher, thread: int) -> None:
        for seq in range(1, per_thread + 1):
            publisher.send(msgspec.structs.replace(base, participant_sid=f"T{thread}", seq=seq))

    with StatsPublisher.from_settings(worker_settings, max_batch=50, linger_ms=5) as publisher:
        threads = [threading.Thread(target=work, args=(publisher, t)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    report = publisher.final_report
    assert report is not None and report.ok and report.sent == 4 * per_thread
    records = kafka_io.read(
        worker_settings.topic_stats,
        until=lambda r: sum(len(json.loads(x.value)["samples"]) for x in r) >= 4 * per_thread,
    )
    seqs: dict[str, list[int]] = defaultdict(list)
    for record in records:
        for s in json.loads(record.value)["samples"]:
            seqs[s["participantSid"]].append(s["seq"])
    assert dict(seqs) == {f"T{t}": list(range(1, per_thread + 1)) for t in range(4)}
