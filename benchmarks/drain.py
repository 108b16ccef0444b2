"""Drain benchmark: how fast one ``netquality worker`` empties a pre-filled stats topic.

Run ``python benchmarks/drain.py [--samples 200000] [--participants 10000] [--seed 1]
[--timeout 900]``: prints one JSON document (progress goes to stderr). ``run()`` returns the
same dict.

Steps, all against one broker (an embedded Tansu started through ``Runtime`` unless
``KAFKA_BOOTSTRAP_SERVERS`` is set), with fresh topic names and app id:

1. generate a realistic mix of participants with :class:`ScriptedParticipant` (mostly audio +
   video publishers with subscriptions, some audio-only, a few subscribe-only viewers; a
   minority hit a loss burst, a bandwidth drop or a reconnect), interleaved second by second so
   each participant's samples are in ``seq`` order; score them offline with
   ``Engine().feed_batch`` for the expected level events;
2. pre-fill the stats topic with aiokafka, one large batch per partition at a time, keyed by
   ``participantSid`` on the default (murmur2) partition;
3. baselines: a bare aiokafka consumer (manual assignment, no group) drains the topic, once
   counting records and once also running ``decode_stats`` on every value;
4. start ONE ``netquality worker`` process and read the levels topic (manual assignment) until
   every expected event is there; the agent rate is samples / (last expected event seen -
   first event seen), so the worker's startup and group join are reported apart;
5. stop the worker with SIGTERM.

Give-up: after ``--timeout`` seconds from the start the run stops waiting and reports what it
saw (the agent rate is then taken over the samples the worker's consumer group committed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script from a checkout: make `pipelines` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipelines.config import Settings
from pipelines.contracts import decode_stats, encode
from pipelines.contracts.stats import StatsSample
from pipelines.quality import Engine
from pipelines.runtime import Runtime
from pipelines.runtime.process import ManagedProcess
from pipelines.streaming.levels import default_partition
from pipelines.streaming.topics import ensure_topics
from pipelines.testing import Conditions, ScriptedParticipant

REPO = Path(__file__).resolve().parents[1]
PRODUCE_BATCH_BYTES = 512 * 1024
"""Producer batch size: large batches are what makes a bulk load fast."""
PROGRESS_EVERY_S = 5.0
"""Interval of the plain progress lines when stderr is not a terminal."""
STALE_SUFFIX = ":stale"
EXPIRED_SUFFIX = ":expired"
COMMIT_POLL_S = 1.0
"""How often the worker group's committed offsets are read."""
SETTLE_S = 5.0
"""After every sample is committed, how long to keep reading for late expected events."""


# ----------------------------------------------------------------------------- the sample mix


@dataclass
class _Script:
    participant: ScriptedParticipant
    base: Conditions
    episode: Conditions | None = None
    episode_steps: range = range(0)


def _participant(i: int, rnd: random.Random) -> ScriptedParticipant:
    """75 % audio+video publishers with subscriptions, 20 % audio-only, 5 % viewers."""
    sid = f"PA{i:06d}"
    room = f"RM{i // 6:05d}"
    region = rnd.choice(["us1", "us1", "eu1", "eu1", "ap1", "sa1"])
    kind = rnd.random()
    if kind < 0.75:
        bitrate, height = rnd.choice([(800_000.0, 360), (1_500_000.0, 720), (2_500_000.0, 1080)])
        return ScriptedParticipant(
            sid, room_sid=room, region=region, publish_video=True, video_bitrate=bitrate,
            video_height=height, subscribe_audio=rnd.randint(1, 5),
            subscribe_video=rnd.randint(1, 4),
        )  # fmt: skip
    if kind < 0.95:
        return ScriptedParticipant(
            sid, room_sid=room, region=region, subscribe_audio=rnd.randint(1, 5)
        )
    return ScriptedParticipant(
        sid, room_sid=room, region=region, publish_audio=False,
        subscribe_audio=rnd.randint(1, 3), subscribe_video=rnd.randint(1, 6),
    )  # fmt: skip


def _script(i: int, steps: int, rnd: random.Random) -> _Script:
    """A participant with its steady network and, for about 15 %, one episode of trouble."""
    p = _participant(i, rnd)
    base = Conditions(
        uplink=rnd.choice([3e6, 5e6, 5e6, 20e6]),
        downlink=rnd.choice([10e6, 25e6, 50e6]),
        rtt=rnd.uniform(0.015, 0.15),
        jitter=rnd.uniform(0.001, 0.012),
    )
    script = _Script(p, base)
    if rnd.random() < 0.15 and steps >= 8:
        what = rnd.random()
        start = rnd.randint(2, steps - 5)
        if what < 0.45:  # loss burst
            script.episode = Conditions(
                uplink=base.uplink, downlink=base.downlink, loss=rnd.choice([0.03, 0.06, 0.12]),
                rtt=base.rtt, jitter=base.jitter * 3,
            )  # fmt: skip
            length = rnd.randint(2, 5)
        elif what < 0.85:  # bandwidth drop
            script.episode = Conditions(
                uplink=rnd.choice([250e3, 500e3, 900e3]),
                downlink=rnd.choice([600e3, 1.5e6, base.downlink]),
                rtt=base.rtt * 2, jitter=base.jitter * 2,
            )  # fmt: skip
            length = rnd.randint(3, 6)
        else:  # reconnect
            script.episode = Conditions(
                uplink=base.uplink, downlink=base.downlink, rtt=base.rtt, jitter=base.jitter,
                state="reconnecting",
            )  # fmt: skip
            length = rnd.randint(1, 3)
        script.episode_steps = range(start, min(start + length, steps))
    return script


def sample_mix(samples: int, participants: int, seed: int) -> list[StatsSample]:
    """``samples`` samples of ``participants`` participants, second by second (seq order)."""
    rnd = random.Random(seed)
    steps = max(math.ceil(samples / participants), 1)
    scripts = [_script(i, steps, rnd) for i in range(participants)]
    out: list[StatsSample] = []
    for step in range(steps):
        for s in scripts:
            c = s.episode if s.episode is not None and step in s.episode_steps else s.base
            out.append(s.participant.step(c))
            if len(out) == samples:
                return out
    return out


# ----------------------------------------------------------------------------- progress


class Progress:
    """A rich progress bar on a terminal, periodic plain lines on stderr otherwise."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.rich: Any = None
        self._tasks: dict[int, list[Any]] = {}
        if enabled and sys.stderr.isatty():
            from rich.console import Console  # noqa: PLC0415
            from rich.progress import (  # noqa: PLC0415
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress  # noqa: PLC0415

            self.rich = RichProgress(
                TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=Console(stderr=True),
            )  # fmt: skip
            self.rich.start()

    def add(self, name: str, total: int) -> int:
        if self.rich is not None:
            return int(self.rich.add_task(name, total=total))
        key = len(self._tasks)
        self._tasks[key] = [name, total, 0, time.monotonic(), 0.0]
        return key

    def update(self, task: int, completed: int, *, final: bool = False) -> None:
        if self.rich is not None:
            self.rich.update(task, completed=completed)
            return
        if not self.enabled:
            return
        t = self._tasks[task]
        t[2] = completed
        now = time.monotonic()
        if final or now - t[4] >= PROGRESS_EVERY_S:
            t[4] = now
            print(
                f"[drain {now - t[3]:7.1f}s] {t[0]}: {completed:,}/{t[1]:,}",
                file=sys.stderr, flush=True,
            )  # fmt: skip

    def note(self, text: str) -> None:
        if self.rich is not None:
            self.rich.console.print(text)
        elif self.enabled:
            print(f"[drain] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()


# ----------------------------------------------------------------------------- Kafka helpers


async def prefill(
    bootstrap: str, topic: str, records: list[tuple[bytes, bytes]], partitions: int,
    progress: Progress,
) -> float:  # fmt: skip
    """Produce all records (acks=1, big batches, one in flight per partition); seconds taken."""
    by_partition: list[list[tuple[bytes, bytes]]] = [[] for _ in range(partitions)]
    for key, value in records:
        by_partition[default_partition(key, partitions)].append((key, value))
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=PRODUCE_BATCH_BYTES,
        max_request_size=4 * PRODUCE_BATCH_BYTES, request_timeout_ms=60_000,
    )  # fmt: skip
    await producer.start()
    task = progress.add("prefill stats topic", len(records))
    done = 0

    async def one_partition(partition: int, items: list[tuple[bytes, bytes]]) -> None:
        nonlocal done
        futures = []
        batch = producer.create_batch()
        count = 0
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                done += count
                progress.update(task, done)
                batch, count = producer.create_batch(), 0
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a {len(value)}-byte sample does not fit in a batch")
            count += 1
        if count:
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            done += count
        await asyncio.gather(*futures)

    try:
        began = time.monotonic()
        await asyncio.gather(*(one_partition(p, items) for p, items in enumerate(by_partition)))
        took = time.monotonic() - began
    finally:
        await producer.stop()
    progress.update(task, len(records), final=True)
    return took


async def drain(
    bootstrap: str, topic: str, total: int, *, decode: bool, deadline: float, progress: Progress
) -> tuple[int, float]:
    """A bare aiokafka consumer reads the topic from the start: (records, seconds)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    task = progress.add("baseline aiokafka" + (" + decode" if decode else ""), total)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count = 0
        began = time.monotonic()
        while count < total and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for messages in batches.values():
                if decode:
                    for m in messages:
                        decode_stats(m.value)
                count += len(messages)
            progress.update(task, count)
        took = time.monotonic() - began
    finally:
        await consumer.stop()
    progress.update(task, count, final=True)
    return count, took


class _EventId(msgspec.Struct):
    eventId: str  # noqa: N815 (the wire name)


@dataclass
class LevelsSeen:
    """What the levels reader has seen so far."""

    expected: set[str]
    records: int = 0
    changes: int = 0
    stale: int = 0
    expired: int = 0
    unexpected: int = 0
    matched: set[str] = field(default_factory=set)
    distinct: set[str] = field(default_factory=set)
    first_at: float | None = None
    complete_at: float | None = None
    first_ts_ms: int | None = None
    first_stale_at: float | None = None
    committed: int = 0
    all_committed_at: float | None = None
    stale_mid_drain: int = 0
    """Stale events seen before the last level change: the sweep fired while samples flowed."""
    last_expected_ts_ms: int | None = None


async def read_levels(bootstrap: str, topic: str, seen: LevelsSeen, stop: asyncio.Event) -> None:
    """Count level events as they appear (manual assignment, no group) until ``stop``."""
    decode = msgspec.json.Decoder(_EventId).decode
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=10_000)
            now = time.monotonic()
            for messages in batches.values():
                for m in messages:
                    seen.records += 1
                    if seen.first_at is None:
                        seen.first_at = now
                    if seen.first_ts_ms is None or m.timestamp < seen.first_ts_ms:
                        seen.first_ts_ms = m.timestamp
                    event_id = decode(m.value).eventId
                    if event_id.endswith(STALE_SUFFIX):
                        seen.stale += 1
                        if seen.first_stale_at is None:
                            seen.first_stale_at = now
                        continue
                    if event_id.endswith(EXPIRED_SUFFIX):
                        seen.expired += 1
                        continue
                    seen.changes += 1
                    seen.distinct.add(event_id)
                    seen.stale_mid_drain = seen.stale
                    if event_id in seen.expected:
                        seen.matched.add(event_id)
                        last = seen.last_expected_ts_ms
                        seen.last_expected_ts_ms = (
                            m.timestamp if last is None else max(last, m.timestamp)
                        )
                    else:
                        seen.unexpected += 1
            if seen.complete_at is None and len(seen.matched) >= len(seen.expected):
                seen.complete_at = now
                stop.set()
    finally:
        await consumer.stop()


class CommittedOffsets:
    """The worker group's committed offsets on the stats topic, read without joining the group.

    A consumer with the group id that never subscribes only sends OffsetFetch (aiokafka's
    admin ``list_consumer_group_offsets`` fails to decode Tansu's answer, this does not).
    """

    def __init__(self, bootstrap: str, group: str, topic: str, partitions: int) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        self.tps = [TopicPartition(topic, p) for p in range(partitions)]
        self.started = False

    async def total(self) -> int | None:
        """Sum of committed offsets over the partitions (None if unknown)."""
        try:
            if not self.started:
                await self.consumer.start()
                self.started = True
            offsets = [await asyncio.wait_for(self.consumer.committed(tp), 10) for tp in self.tps]
        except Exception:
            return None
        return sum(o or 0 for o in offsets)

    async def close(self) -> None:
        if self.started:
            with contextlib.suppress(Exception):
                await self.consumer.stop()


async def watch_committed(
    committed: CommittedOffsets, total: int, seen: LevelsSeen, progress: Progress,
    stop: asyncio.Event,
) -> None:  # fmt: skip
    """Follow what the worker committed (Faust commits every ~3 s); note when it is all."""
    task = progress.add("agent: samples committed", total)
    while not stop.is_set():
        count = await committed.total()
        if count is not None:
            seen.committed = count
            progress.update(task, count)
            if count >= total and seen.all_committed_at is None:
                seen.all_committed_at = time.monotonic()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), COMMIT_POLL_S)
    progress.update(task, seen.committed, final=True)


@dataclass
class WorkerStats:
    cpu_s: float = 0.0
    peak_rss: int = 0


def _sample_worker(proc: psutil.Process, stats: WorkerStats) -> None:
    with contextlib.suppress(psutil.Error):
        with proc.oneshot():
            t = proc.cpu_times()
            stats.cpu_s = t.user + t.system + t.children_user + t.children_system
            stats.peak_rss = max(stats.peak_rss, proc.memory_info().rss)
        # The kernel's own high-water mark catches peaks between our samples (Linux).
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    stats.peak_rss = max(stats.peak_rss, int(line.split()[1]) * 1024)


# ----------------------------------------------------------------------------- the run


async def _bench(
    settings: Settings, payloads: list[tuple[bytes, bytes]], expected: set[str],
    deadline: float, workdir: Path, progress: Progress,
) -> dict[str, Any]:  # fmt: skip
    bootstrap = str(settings.kafka_bootstrap_servers)
    topic = settings.topic_stats
    total = len(payloads)
    notes: list[str] = []
    out: dict[str, Any] = {}

    took = await prefill(bootstrap, topic, payloads, settings.partitions, progress)
    out["prefill_rate"] = round(total / took)
    out["prefill_s"] = round(took, 2)

    for decode, name in ((False, "baseline_aiokafka"), (True, "baseline_aiokafka_decode")):
        count, took = await drain(
            bootstrap, topic, total, decode=decode, deadline=deadline, progress=progress
        )
        out[f"{name}_msgs_per_s"] = round(count / took) if took > 0 else None
        if count < total:
            notes.append(f"{name} read only {count} of {total} records before the timeout")

    # The agent: one worker process, configured only through its environment.
    seen = LevelsSeen(expected)
    stop = asyncio.Event()
    reader = asyncio.create_task(read_levels(bootstrap, settings.topic_levels, seen, stop))
    worker = ManagedProcess(
        "drain-worker",
        [sys.executable, "-m", "pipelines.cli", "worker", "--loglevel", "warning"],
        log_path=workdir / "worker.log",
        env={**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"},
        cwd=REPO,
    )
    events_task = progress.add("agent: level events", len(expected))
    committed = CommittedOffsets(bootstrap, settings.app_id, topic, settings.partitions)
    watcher = asyncio.create_task(watch_committed(committed, total, seen, progress, stop))
    started = time.monotonic()
    worker.start()
    ps = psutil.Process(worker.pid)
    stats = WorkerStats()
    cpu_at_first: float | None = None
    timed_out = died = False
    try:
        while not stop.is_set():
            await asyncio.sleep(0.25)
            _sample_worker(ps, stats)
            if cpu_at_first is None and seen.first_at is not None:
                cpu_at_first = stats.cpu_s
            progress.update(events_task, len(seen.matched))
            if reader.done():
                break
            # Every sample processed (the agent commits only after publishing) but some
            # expected events never came: the output diverged; stop waiting for them.
            if (
                seen.all_committed_at is not None
                and time.monotonic() - seen.all_committed_at > SETTLE_S
            ):
                break
            if not worker.alive():
                died = True
                break
            if time.monotonic() >= deadline:
                timed_out = True
                break
        stop.set()
        await reader  # re-raises a reader failure
        ended = seen.complete_at or seen.all_committed_at or time.monotonic()
        progress.update(events_task, len(seen.matched), final=True)
        _sample_worker(ps, stats)
        if not seen.complete_at:
            last = await committed.total()
            seen.committed = last if last is not None else seen.committed
    finally:
        stop.set()
        for task in (reader, watcher):
            if not task.done():
                task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await committed.close()
        await asyncio.to_thread(worker.stop, 30.0)

    complete = seen.complete_at is not None
    drained = complete or seen.all_committed_at is not None
    processed = total if drained else seen.committed
    if complete:
        out["agent_completion"] = "all expected events seen"
    elif drained:
        out["agent_completion"] = "all samples committed, some expected events never came"
        notes.append(
            "the worker's output diverged from the offline engine: the drain end is when its "
            f"group had committed every sample (+- the ~3 s commit interval); "
            f"{len(expected) - len(seen.matched)} expected events never appeared"
        )
    else:
        out["agent_completion"] = "incomplete"
        notes.append(f"agent did not finish: rate is over the {processed} samples it committed")
    out["agent_samples_processed"] = processed
    if seen.first_at is not None and ended > seen.first_at:
        out["agent_samples_per_s"] = round(processed / (ended - seen.first_at))
    else:
        out["agent_samples_per_s"] = None
    baseline = out.get("baseline_aiokafka_msgs_per_s")
    rate = out["agent_samples_per_s"]
    out["ratio_agent_to_baseline"] = round(rate / baseline, 4) if rate and baseline else None
    out["startup_to_first_event_s"] = (
        round(seen.first_at - started, 2) if seen.first_at is not None else None
    )
    out["drain_s"] = round(ended - seen.first_at, 2) if seen.first_at is not None else None
    if complete and seen.first_ts_ms is not None and seen.last_expected_ts_ms is not None:
        span = (seen.last_expected_ts_ms - seen.first_ts_ms) / 1000
        out["agent_samples_per_s_by_event_timestamps"] = round(total / span) if span else None
    out["events_expected"] = len(expected)
    out["events_seen"] = seen.changes
    out["events_matched"] = len(seen.matched)
    out["events_distinct"] = len(seen.distinct)
    out["events_unexpected"] = seen.unexpected
    out["events_unexpected_distinct"] = len(seen.distinct - expected)
    out["stale_events_seen"] = seen.stale
    out["stale_events_mid_drain"] = seen.stale_mid_drain
    out["expired_events_seen"] = seen.expired
    if seen.first_stale_at is not None and seen.first_at is not None:
        out["first_stale_after_first_event_s"] = round(seen.first_stale_at - seen.first_at, 2)
    if seen.stale_mid_drain:
        notes.append(
            f"{seen.stale_mid_drain} stale events appeared mid-drain (the worker's sweep "
            "judged backlog participants silent); each stale participant's next sample then "
            "emits a level change the offline engine does not, see events_unexpected"
        )
    out["worker_cpu_s"] = round(stats.cpu_s, 2)
    out["worker_cpu_drain_s"] = (
        round(stats.cpu_s - cpu_at_first, 2) if cpu_at_first is not None else None
    )
    out["worker_peak_rss_mb"] = round(stats.peak_rss / 2**20, 1)
    out["worker_exit_code"] = worker.returncode
    if timed_out:
        notes.append("gave up at the timeout")
    if died:
        notes.append(f"worker exited early (rc={worker.returncode}); log: {workdir}/worker.log")
    if worker.returncode not in (0, None) and not died:
        notes.append(f"worker did not stop cleanly on SIGTERM (rc={worker.returncode})")
    out["_notes"] = notes
    out["_failed"] = timed_out or died or not complete
    if not complete:
        notes.append(f"work dir kept: {workdir} (worker.log, state/logs/tansu.log)")
    return out


def run(
    samples: int = 200_000,
    participants: int = 10_000,
    seed: int = 1,
    timeout_s: float = 900.0,
    partitions: int = 8,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate, pre-fill, drain with the baselines and with one worker; the JSON-ready result."""
    began = time.monotonic()
    deadline = began + timeout_s
    bar = Progress(progress)
    workdir = Path(tempfile.mkdtemp(prefix="nq-drain-"))
    suffix = uuid.uuid4().hex[:10]
    settings = Settings.from_env().with_overrides(
        state_dir=workdir / "state",
        app_id=f"nq-drain-{suffix}",
        partitions=partitions,
        topic_stats=f"drain-stats-{suffix}",
        topic_levels=f"drain-levels-{suffix}",
        topic_levels_current=f"drain-current-{suffix}",
        topic_rollups=f"drain-rollups-{suffix}",
        topic_alerts=f"drain-alerts-{suffix}",
        topic_deadletter=f"drain-deadletter-{suffix}",
    )
    keep = False
    measured: dict[str, Any] = {}
    runtime = Runtime(settings, database=False)
    try:
        bar.note(f"generating {samples:,} samples of {participants:,} participants")
        generated = sample_mix(samples, participants, seed)
        events = Engine().feed_batch(generated)
        ids = [e.event_id for e in events]
        expected = {i for i in ids if not i.endswith((STALE_SUFFIX, EXPIRED_SUFFIX))}
        payloads = [(s.participant_sid.encode(), encode(s)) for s in generated]
        sizes = sum(len(v) for _, v in payloads)
        del generated, events
        settings = runtime.start()
        ensure_topics(settings)
        bar.note(f"broker {settings.kafka_bootstrap_servers}, work dir {workdir}")
        measured = asyncio.run(_bench(settings, payloads, expected, deadline, workdir, bar))
        keep = measured["_failed"]  # keep the worker log for a look
    except BaseException:
        keep = True
        raise
    finally:
        bar.close()
        runtime.close()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    notes = measured.pop("_notes")
    measured.pop("_failed")
    if len(ids) - len(expected):
        notes.append(f"{len(ids) - len(expected)} stale or expired events expected offline")
    notes.append(
        "agent rate = samples processed / (drain end - first level event seen); startup "
        "(process, group join) is startup_to_first_event_s"
    )
    notes.append(f"{os.cpu_count()} CPUs shared by broker, worker and this reader")
    result: dict[str, Any] = {
        "benchmark": "netquality.drain",
        "python": platform.python_version(),
        "broker": "external" if runtime.requested.kafka_bootstrap_servers else "embedded tansu",
        "partitions": partitions,
        "samples": len(payloads),
        "participants": participants,
        "mean_sample_bytes": round(sizes / len(payloads)),
        **measured,
        "stale_events_expected": len(ids) - len(expected),
        "elapsed_s": round(time.monotonic() - began, 1),
        "notes": "; ".join(notes),
    }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200_000)
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (s)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    result = run(
        args.samples, args.participants, args.seed, args.timeout, args.partitions,
        progress=not args.quiet,
    )  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
