"""Records Faust drops between its fetcher and an agent are read again: none is lost.

Faust's ``flow_control.resume()`` clears the stream queues, also while the flow runs, and its
table recovery calls it after seeking: a restarted worker then never saw some offsets, and a
later kill made the loss permanent (this suite caught it). Here the worker loses one queued
record in 50 while it drains a backlog (queue_losing_worker.py); every level change of an
uninterrupted offline run must still come out, each exactly as offline.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import msgspec
from faults_support import record_figures, scale, shifting_load

from pipelines.contracts import decode_level, encode
from pipelines.quality import Engine, load_thresholds
from pipelines.runtime.process import ManagedProcess

LAUNCHER = Path(__file__).with_name("queue_losing_worker.py")


def test_records_lost_from_stream_queues_are_read_again(
    worker_settings, kafka_io, no_staleness, tmp_path
):
    participants, steps = scale(80, 400), scale(40, 60)
    seed = random.randrange(1 << 30)
    settings = worker_settings.with_overrides(
        thresholds_file=no_staleness, participant_ttl_s=7200.0
    )
    samples = shifting_load(participants, steps, seed)
    reference = Engine(load_thresholds(no_staleness)).feed_batch(samples)
    expected = {e.event_id: msgspec.to_builtins(e) for e in reference}
    # The whole load first: the worker starts on a backlog, its queues always full.
    kafka_io.produce(
        settings.topic_stats, [(s.participant_sid.encode(), encode(s)) for s in samples]
    )
    worker = ManagedProcess(
        "worker-losing-records",
        [sys.executable, str(LAUNCHER)],
        log_path=tmp_path / "worker-losing-records.log",
        env={**os.environ, **settings.as_env(), "FAULT_DROP_EVERY": "50"},
    )
    worker.start()
    try:
        records = kafka_io.read(
            settings.topic_levels,
            until=lambda r: len({x.value for x in r}) >= len(expected),
            timeout=150,
        )
        log = worker.log_path.read_text(errors="replace")
    finally:
        worker.stop(timeout=30)
    events = [msgspec.to_builtins(decode_level(r.value)) for r in records]
    published = {e["eventId"]: e for e in events}
    missing = sorted(expected.keys() - published.keys())
    assert not missing, (
        f"{len(missing)} of {len(expected)} level changes lost with the queued records "
        f"(seed {seed}): {missing[:20]}"
    )
    for event in events:
        assert event == expected[event["eventId"]], event["eventId"]
    # The fault did fire, and was repaired by reading the skipped offsets again.
    rereads = log.count("were skipped by the consumer; reading them again")
    assert rereads > 0, "no record was lost from a queue: the test proved nothing"
    assert "still missing after" not in log and "deleted by retention" not in log
    record_figures(
        "dropped_records",
        {
            "seed": seed,
            "samples": len(samples),
            "expected_events": len(expected),
            "kafka_event_records": len(events),
            "gaps_read_again": rereads,
            "events_lost": 0,
        },
    )
