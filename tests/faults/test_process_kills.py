"""SIGKILL the worker or the sink at random points during a load; nothing is lost or doubled.

The reference is the pure engine run offline on the same samples (what ``netquality score``
does). The worker's output may repeat an event after a kill (at-least-once), but only as an
exact copy with the same event id; Postgres must hold exactly one row per expected event.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
from faults_support import (
    FULL,
    query,
    record_figures,
    scale,
    shifting_load,
    start_process,
    wait_for,
)
from kafka import KafkaConsumer, TopicPartition

from pipelines.contracts import decode_level, encode
from pipelines.quality import Engine, load_thresholds
from pipelines.runtime.process import ManagedProcess


def topic_end(bootstrap: str, topic: str) -> int:
    """Sum of a topic's end offsets: how many records it holds (progress of its producer)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="faults-progress")
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


class Producer(threading.Thread):
    """Produces the load in chunks over ``duration`` seconds, as live clients would."""

    def __init__(self, kafka_io: Any, topic: str, samples: list, duration: float) -> None:
        super().__init__(daemon=True)
        self.kafka_io, self.topic, self.samples, self.duration = kafka_io, topic, samples, duration
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            chunks = 40
            size = -(-len(self.samples) // chunks)
            for c in range(chunks):
                part = self.samples[c * size : (c + 1) * size]
                self.kafka_io.produce(
                    self.topic, [(s.participant_sid.encode(), encode(s)) for s in part]
                )
                time.sleep(self.duration / chunks)
        except BaseException as exc:
            self.error = exc


def kill_and_restart(
    victim: str,
    start: Any,
    progress: Callable[[], int],
    kills: int,
    rng: random.Random,
) -> tuple[ManagedProcess, list[float]]:
    """SIGKILL ``victim`` ``kills`` times, each at a random point after it made progress;
    returns the last process and seconds to progress: after the first start, then after each
    restart."""
    proc = start()
    restart_costs: list[float] = []
    for _ in range(kills):
        began = time.monotonic()
        before = progress()
        wait_for(lambda b=before: progress() > b, 180, f"{victim} progress")
        restart_costs.append(time.monotonic() - began)
        time.sleep(rng.uniform(0.2, 3.0))
        assert proc.alive, proc.log_tail()
        assert proc.pid is not None
        os.killpg(proc.pid, signal.SIGKILL)  # its own process group: all it forked too
        proc.wait(timeout=30)
        proc = start()
    began = time.monotonic()  # the last restart's cost, if there is load left to show it
    before = progress()
    deadline = began + 40  # restarts measured above took 20-25 s; the load may be over
    while time.monotonic() < deadline and progress() <= before:
        time.sleep(0.25)
    if progress() > before:
        restart_costs.append(time.monotonic() - began)
    return proc, restart_costs


def distinct(events: list) -> dict[str, dict]:
    return {e["eventId"]: e for e in events}


# CI-size kills the worker only (time budget); `make faults` kills the sink as well. The sink's
# own crash safety is also covered in CI by the replay tests of tests/integration.
VICTIMS = ["worker", "sink"] if FULL else ["worker"]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("victim", VICTIMS)
def test_sigkill_during_load_loses_and_doubles_nothing(
    victim, worker_settings, kafka_io, migrated, unique_id, no_staleness, tmp_path
):
    participants, steps = scale(40, 200), scale(60, 120)
    kills = scale(3, 5)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    settings = worker_settings.with_overrides(
        thresholds_file=no_staleness,
        participant_ttl_s=7200.0,
        database_url=migrated.url,
        sink_group=f"sink-{unique_id[-10:]}",
    )
    samples = shifting_load(participants, steps, seed)
    reference = Engine(load_thresholds(no_staleness)).feed_batch(samples)
    expected = {e.event_id: msgspec.to_builtins(e) for e in reference}
    final = {e.participant_sid: e.level for e in reference}
    bootstrap = settings.kafka_bootstrap_servers
    assert bootstrap

    producer = Producer(kafka_io, settings.topic_stats, samples, duration=scale(60, 150))
    producer.start()
    n = {"worker": 0, "sink": 0}

    def start(kind: str) -> ManagedProcess:
        n[kind] += 1
        return start_process(kind, settings, tmp_path, f"{kind}-{n[kind]}")

    began = time.monotonic()
    others = [start("sink" if victim == "worker" else "worker")]
    url = settings.database_url
    assert url

    def progress() -> int:
        if victim == "worker":
            return topic_end(bootstrap, settings.topic_levels)
        return query(url, "SELECT count(*) FROM level_changes")[0][0]

    last, costs = kill_and_restart(victim, lambda: start(victim), progress, kills, rng)
    producer.join(timeout=600)
    assert producer.error is None, producer.error
    try:
        # Kafka history: every expected event, repeats only as exact copies.
        records = kafka_io.read(
            settings.topic_levels,
            until=lambda r: len({x.value for x in r}) >= len(expected),
            timeout=240,
        )
        events = [msgspec.to_builtins(decode_level(r.value)) for r in records]
        missing = sorted(expected.keys() - distinct(events).keys())
        assert not missing, (
            f"{len(missing)} of {len(expected)} level changes never published after "
            f"{kills} SIGKILLs of the {victim} (seed {seed}): {missing[:20]}"
        )
        for event in events:
            assert event == expected[event["eventId"]], event["eventId"]
        assert distinct(events).keys() == expected.keys()
        wait_for(
            lambda: query(url, "SELECT count(DISTINCT event_id) FROM level_changes")[0][0]
            >= len(expected),
            timeout=240,
            what="all level changes in Postgres",
        )
        drained_after = time.monotonic() - began
        # Postgres history: no missing change, no duplicate row.
        rows = query(settings.database_url, "SELECT event_id, level FROM level_changes")
        ids = [r[0] for r in rows]
        assert len(ids) == len(set(ids)), "duplicate rows"
        assert set(ids) == expected.keys()
        assert {r[0]: r[1] for r in rows} == {k: v["level"] for k, v in expected.items()}
        # Final level per participant equals the uninterrupted offline run's.
        current = dict(
            query(settings.database_url, "SELECT participant_sid, level FROM current_levels")
        )
        assert current == final
    finally:
        for proc in [last, *others]:
            proc.stop(timeout=30)
    record_figures(
        f"sigkill_{victim}",
        {
            "victim": victim,
            "seed": seed,
            "participants": participants,
            "samples": len(samples),
            "load_seconds": scale(60, 150),
            "sigkills": kills,
            "first_start_to_progress_s": round(costs[0], 1),
            "restart_to_progress_s": [round(c, 1) for c in costs[1:]],
            "all_rows_after_s": round(drained_after, 1),
            "expected_events": len(expected),
            "kafka_event_records": len(events),
            "replayed_duplicates_in_kafka": len(events) - len(expected),
            "rows_lost": 0,
            "duplicate_rows": 0,
            "final_levels_equal_offline": True,
        },
    )
