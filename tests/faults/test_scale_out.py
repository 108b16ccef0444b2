"""Workers of one consumer group die and join under load; no level change is lost or doubled.

Production scales the worker with ``docker compose up --scale worker=3``: the workers share
one consumer group, and a rebalance moves partitions, and the tables' state with them (a
worker that gets a partition restores its participants from the changelog). Here workers A
and B share 6 partitions while a steady load flows; A is SIGKILLed, B takes A's partitions
over from their changelogs, then C joins and takes some of them from B, which is alive and
hands them over in a rebalance. The load flows from before the kill until after C's join, so
both rebalances happen with records in flight; it stops only once C holds partitions, and
the reference is computed on what was produced.

The reference is the pure engine run offline on the same samples. As in
``test_process_kills.py``, a replay may publish an event again, but only as an exact copy
with the same event id; Postgres must hold exactly one row per expected event, and each
participant's current level must be the one of its last expected event. A worker that took a
partition over without its changelog state would see each participant anew and publish
events the offline run does not have, so equality also proves the recovery.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
import urllib.request
from typing import Any

import msgspec
import pytest
from faults_support import (
    last_assignment,
    published_as_offline,
    record_figures,
    scale,
    shifting_load,
    start_process,
    stored_as_offline,
    wait_for,
    with_partitions,
)
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from test_participant_churn import free_port

from pipelines.contracts import encode
from pipelines.quality import Engine, load_thresholds
from pipelines.runtime.process import ManagedProcess

PARTITIONS = 6
ALL = set(range(PARTITIONS))


class SteadyLoad(threading.Thread):
    """Produces the load one step (a sample of every participant) every ``step_s`` seconds
    until stopped, as live clients would; :meth:`stop` returns the samples produced."""

    def __init__(self, kafka_io: Any, topic: str, samples: list, participants: int,
                 step_s: float) -> None:  # fmt: skip
        super().__init__(daemon=True)
        self.kafka_io, self.topic, self.step_s = kafka_io, topic, step_s
        self.steps = [samples[i : i + participants] for i in range(0, len(samples), participants)]
        self.sent = 0
        self.error: BaseException | None = None
        self._stopping = threading.Event()

    def run(self) -> None:
        try:
            for step in self.steps:
                if self._stopping.is_set():
                    return
                self.kafka_io.produce(
                    self.topic, [(s.participant_sid.encode(), encode(s)) for s in step]
                )
                self.sent += 1
                self._stopping.wait(self.step_s)
        except BaseException as exc:
            self.error = exc

    def flowing(self) -> None:
        """Fail if the load is over before the test stopped it (it ran out, or failed)."""
        assert self.error is None, self.error
        assert self.is_alive(), f"the load ran out after {self.sent} steps"

    def wait_steps(self, n: int) -> None:
        """Until ``n`` more steps are produced."""
        target = self.sent + n
        wait_for(lambda: self.sent >= target or not self.is_alive(), 60 + n * self.step_s * 10,
                 f"{n} more steps of load")  # fmt: skip
        self.flowing()

    def halt(self) -> None:
        self._stopping.set()
        self.join(timeout=60)

    def stop(self) -> list:
        self.halt()
        assert not self.is_alive() and self.error is None, self.error
        return [s for step in self.steps[: self.sent] for s in step]


def samples_consumed(port: int) -> float:
    """The worker's ``netquality_samples_total`` (0 until it serves metrics)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    found = re.search(r"^netquality_samples_total (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


def unconsumed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """Records of ``topic`` per partition that ``group`` has not committed yet."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="faults-lag")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="faults-lag")
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = consumer.end_offsets(tps)
        committed = admin.list_group_offsets(group).get(group, {})
    finally:
        consumer.close()
        admin.close()
    behind = {tp.partition: end - (committed[tp].offset if tp in committed else 0)
              for tp, end in ends.items()}  # fmt: skip
    return {partition: n for partition, n in behind.items() if n > 0}


@pytest.mark.timeout(900)
def test_worker_killed_and_worker_added_in_one_group_lose_and_double_nothing(
    worker_settings, kafka_io, migrated, unique_id, no_staleness, tmp_path
):
    participants, step_s = scale(36, 150), 0.5
    between = scale(8, 40)  # steps of load between one fault and the next thing
    seed = random.randrange(1 << 30)
    settings = with_partitions(
        worker_settings.with_overrides(
            thresholds_file=no_staleness,
            participant_ttl_s=7200.0,
            database_url=migrated.url,
            sink_group=f"sink-{unique_id[-10:]}",
        ),
        PARTITIONS,
    )
    bootstrap, url = settings.kafka_bootstrap_servers, settings.database_url
    assert bootstrap and url
    # Far more steps than the test needs (15 min); it stops the load once C has joined.
    load = SteadyLoad(kafka_io, settings.topic_stats, shifting_load(participants, 1800, seed),
                      participants, step_s)  # fmt: skip

    ports: dict[str, int] = {}
    procs: dict[str, ManagedProcess] = {}
    marks: dict[str, float] = {}

    def start(name: str) -> ManagedProcess:
        ports[name] = free_port()
        worker = settings.with_overrides(metrics_port=ports[name])
        procs[name] = start_process("worker", worker, tmp_path, f"worker-{name}")
        return procs[name]

    def assignment(name: str) -> set[int] | None:
        return last_assignment(procs[name].log_path.read_text(errors="replace"),
                               settings.topic_stats)  # fmt: skip

    def mark(what: str) -> None:
        marks[what] = round(time.monotonic() - began, 1)

    began = time.monotonic()
    sink = start_process("sink", settings, tmp_path, "sink")
    a, b = start("A"), start("B")
    load.start()
    try:
        # A and B share the partitions; both must consume before A dies.
        wait_for(
            lambda: samples_consumed(ports["A"]) > 0 and samples_consumed(ports["B"]) > 0,
            180,
            "workers A and B both consuming samples (one never got a partition?)",
        )
        mark("a_and_b_consuming")
        load.wait_steps(between)
        a_owned = assignment("A")
        assert a_owned and a_owned != ALL, f"A did not share the partitions: {a_owned}"
        a_consumed, b_before = samples_consumed(ports["A"]), samples_consumed(ports["B"])
        assert a.alive and a.pid is not None, a.log_tail()
        load.flowing()
        os.killpg(a.pid, signal.SIGKILL)  # its own process group: all it forked too
        a.wait(timeout=30)
        mark("a_killed")
        # B takes A's partitions over once the group drops A (its session timeout).
        wait_for(lambda: assignment("B") == ALL, 180,
                 f"B to take A's partitions {sorted(a_owned)} over after the SIGKILL")  # fmt: skip
        load.flowing()
        mark("b_took_over")
        load.wait_steps(between)
        # C joins while the load flows and takes partitions from B, alive and consuming.
        c = start("C")
        mark("c_started")
        wait_for(lambda: bool(assignment("C")), 180, "C to get partitions from B")
        load.flowing()
        mark("c_assigned")
        load.wait_steps(between)
        samples = load.stop()
        mark("load_stopped")

        reference = Engine(load_thresholds(no_staleness)).feed_batch(samples)
        expected = {e.event_id: msgspec.to_builtins(e) for e in reference}
        # Every sample consumed and committed by the group (A's partitions too).
        wait_for(lambda: not unconsumed(bootstrap, settings.app_id, settings.topic_stats), 240,
                 "the group to commit every stats record")  # fmt: skip
        events = published_as_offline(kafka_io, settings.topic_levels, expected,
                                      f"A was killed and C added (seed {seed})")  # fmt: skip
        # The partitions moved: A's to B (checked above), then some of B's to C; both
        # consumed samples after the kill, and C after it joined.
        b_final, c_final = assignment("B"), assignment("C")
        assert c_final, f"C never got a stats partition: {c_final}"
        assert b_final is not None and b_final | c_final == ALL and not b_final & c_final, (
            f"after C joined, B has {b_final} and C {c_final} of {PARTITIONS} partitions"
        )
        b_after, c_consumed = samples_consumed(ports["B"]), samples_consumed(ports["C"])
        assert b_after > b_before and c_consumed > 0, (b_before, b_after, c_consumed)
        assert b.alive and c.alive, (b.log_tail(), c.log_tail())

        stored_as_offline(url, reference)
        drained_after = time.monotonic() - began
    finally:
        load.halt()
        for proc in procs.values():
            if proc.alive:
                proc.stop(timeout=30)
        sink.stop(timeout=30)
    record_figures(
        "scale_out",
        {
            "seed": seed,
            "partitions": PARTITIONS,
            "participants": participants,
            "samples": len(samples),
            "steps_of_load": len(samples) // participants,
            "seconds_since_start": marks,
            "a_owned_when_killed": sorted(a_owned),
            "a_samples_before_kill": a_consumed,
            "b_final": sorted(b_final),
            "c_final": sorted(c_final),
            "c_samples": c_consumed,
            "all_rows_after_s": round(drained_after, 1),
            "expected_events": len(expected),
            "kafka_event_records": len(events),
            "replayed_duplicates_in_kafka": len(events) - len(expected),
            "rows_lost": 0,
            "duplicate_rows": 0,
        },
    )
