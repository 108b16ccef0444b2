"""``netquality bench``: every throughput figure of issue 6, each beside a baseline of the same run.

Sections (``--sections``, default all): ``engine`` (pure scoring, benchmarks/engine.py),
``drain`` (one worker empties a pre-filled stats topic of batch envelopes, and of bare
samples; baseline: a bare aiokafka consumer on the same topic), ``latency`` (produce ->
level event at a fixed offered load; baseline: produce -> consume of the same messages by a
bare consumer), ``sink`` (benchmarks/sink.py), ``memory`` (worker RSS per active participant;
baseline: the idle worker) and ``scale`` (drain with 1 and 2 worker processes).

Prints ONE JSON document on stdout and writes a Markdown table (path in the JSON, also said on
stderr); progress goes to stderr. Kafka sections share one broker (embedded Tansu through
``Runtime`` unless ``KAFKA_BOOTSTRAP_SERVERS`` is set); every measurement uses fresh topics
and a fresh consumer group.

The samples come from :func:`bench_samples`: the one place to swap in another source (the
simulator) without touching the measurements.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _benchmarks_importable() -> None:
    """benchmarks/ lives beside the package in a checkout (it is not installed)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


SECTIONS = ("engine", "drain", "latency", "sink", "memory", "scale")
ENVELOPE_SAMPLES = 250
"""Samples per envelope in the bench's backlog: what a publisher gathers per partition per
flush (the contract allows 1,000 and 1 MiB; ~1.4 KiB samples give ~360 KiB here)."""


@dataclass
class BenchSizes:
    """How big each section is; the defaults fit a 2-core machine in under 10 minutes."""

    engine_samples: int = 30_000
    engine_repeat: int = 3
    drain_samples: int = 500_000
    drain_participants: int = 10_000
    single_samples: int = 30_000
    """Bare-sample drain (the old path): smaller, it is ~10x slower."""
    latency_rate: int = 5_000
    latency_seconds: float = 60.0
    sink_rows: int = 50_000
    sink_repeat: int = 1
    memory_participants: int = 100_000
    scale_samples: int = 100_000
    scale_participants: int = 10_000
    partitions: int = 8
    seed: int = 1
    timeout_s: float = 300.0
    """Per measurement: a drain or latency run that takes longer reports what it saw."""


# ----------------------------------------------------------------------------- progress

PROGRESS_EVERY_S = 5.0
"""Without a terminal: one progress line per task at most this often."""


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
                f"[bench {now - t[3]:7.1f}s] {t[0]}: {completed:,}/{t[1]:,}",
                file=sys.stderr, flush=True,
            )  # fmt: skip

    def note(self, text: str) -> None:
        if self.rich is not None:
            self.rich.console.print(text)
        elif self.enabled:
            print(f"[bench] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()


# ----------------------------------------------------------------------------- inputs


def bench_samples(samples: int, participants: int, seed: int) -> list[Any]:
    """The bench's realistic sample mix: the demo's simulator (``pipelines/simulate``), second
    by second, each participant in seq order.

    Rooms of 4-6 participants in three regions on real network traces, with the default
    script's incident, reconnects, HD switches, audio-only participants, joins and leaves,
    scaled to ``participants`` (about 5 per room); the first ``samples`` samples.
    """
    from pipelines.simulate.generator import Simulation  # noqa: PLC0415
    from pipelines.simulate.scenario import default_scenario  # noqa: PLC0415

    scenario = default_scenario(max(2, round(participants / 5)), (4, 6), seed=seed)
    # Sample times end about now, as if just recorded: the room stages judge an event's time
    # against when it reached the stream and drop it minutes off (pipelines/quality/event_time).
    seconds = -(-samples // max(participants, 1))
    start_ms = (int(time.time()) - seconds) * 1000
    out: list[Any] = []
    for second in Simulation(scenario, seed=seed, start_ms=start_ms):
        out.extend(second)
        if len(out) >= samples:
            break
    return out[:samples]


def envelopes(
    samples: Iterable[Any], partitions: int, per_envelope: int = ENVELOPE_SAMPLES
) -> list[tuple[int, bytes, bytes, int]]:
    """Batch envelopes as a publisher makes them: samples grouped by the default partition
    of their ``participantSid``, in input order; (partition, key, value, samples in it)."""
    from pipelines.contracts import encode  # noqa: PLC0415
    from pipelines.streaming.levels import PartitionOf  # noqa: PLC0415

    partition_of = PartitionOf(partitions)
    open_: dict[int, list[tuple[str, bytes]]] = {}
    out: list[tuple[int, bytes, bytes, int]] = []

    def close(p: int) -> None:
        items = open_.pop(p)
        value = b'{"schema":"netquality.stats.batch.v1","samples":['
        value += b",".join(v for _, v in items) + b"]}"
        out.append((p, items[0][0].encode(), value, len(items)))

    for s in samples:
        p = partition_of(s.participant_sid)
        items = open_.setdefault(p, [])
        items.append((s.participant_sid, encode(s)))
        if len(items) >= per_envelope:
            close(p)
    for p in list(open_):
        close(p)
    return out


def single_messages(samples: Iterable[Any], partitions: int) -> list[tuple[int, bytes, bytes, int]]:
    """One bare sample per message, keyed by participant, on its default partition."""
    from pipelines.contracts import encode  # noqa: PLC0415
    from pipelines.streaming.levels import PartitionOf  # noqa: PLC0415

    partition_of = PartitionOf(partitions)
    return [
        (partition_of(s.participant_sid), s.participant_sid.encode(), encode(s), 1) for s in samples
    ]


def expected_event_ids(samples: list[Any]) -> set[str]:
    """Event ids the offline engine gives (without staleness): what a drain must deliver."""
    from pipelines.quality import Engine  # noqa: PLC0415

    ids = (e.event_id for e in Engine().feed_batch(samples))
    return {i for i in ids if not i.endswith((":stale", ":expired"))}


# ----------------------------------------------------------------------------- Kafka pieces


def _fresh_settings(base: Any, workdir: Path, tag: str, partitions: int) -> Any:
    from pipelines.streaming.topics import ensure_topics  # noqa: PLC0415

    suffix = f"{tag}-{uuid.uuid4().hex[:8]}"
    settings = base.with_overrides(
        state_dir=workdir / f"state-{suffix}",
        app_id=f"nq-bench-{suffix}",
        partitions=partitions,
        topic_stats=f"bench-stats-{suffix}",
        topic_levels=f"bench-levels-{suffix}",
        topic_levels_current=f"bench-current-{suffix}",
        topic_rollups=f"bench-rollups-{suffix}",
        topic_alerts=f"bench-alerts-{suffix}",
        topic_deadletter=f"bench-deadletter-{suffix}",
    )
    ensure_topics(settings)
    return settings


async def produce(
    bootstrap: str,
    topic: str,
    messages: list[tuple[int, bytes, bytes, int]],
    progress: Any,
    label: str,
) -> float:
    """Produce pre-partitioned messages in big batches (acks=1); seconds taken."""
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks=1,
        linger_ms=20,
        max_batch_size=1024 * 1024,
        max_request_size=8 * 1024 * 1024,
        request_timeout_ms=60_000,
    )
    await producer.start()
    by_partition: dict[int, list[tuple[bytes, bytes, int]]] = {}
    for p, key, value, n in messages:
        by_partition.setdefault(p, []).append((key, value, n))
    total = sum(m[3] for m in messages)
    task = progress.add(label, total)
    done = 0

    async def one(partition: int, items: list[tuple[bytes, bytes, int]]) -> None:
        nonlocal done
        futures = []
        batch, count = producer.create_batch(), 0
        for key, value, n in items:
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                done += count
                progress.update(task, done)
                batch, count = producer.create_batch(), 0
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a {len(value)}-byte message does not fit in a batch")
            count += n
        if count:
            futures.append(await producer.send_batch(batch, topic, partition=partition))
            done += count
        await asyncio.gather(*futures)

    try:
        began = time.monotonic()
        await asyncio.gather(*(one(p, items) for p, items in by_partition.items()))
        took = time.monotonic() - began
    finally:
        await producer.stop()
    progress.update(task, total, final=True)
    return took


async def bare_drain(bootstrap: str, topic: str, messages: int, deadline: float) -> float:
    """Seconds a bare aiokafka consumer (no group) takes to read ``messages`` records."""
    from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        count = 0
        began = time.monotonic()
        while count < messages and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
            count += sum(len(v) for v in batches.values())
        return time.monotonic() - began
    finally:
        await consumer.stop()


@dataclass
class Workers:
    """Worker processes of one measurement, with their CPU and memory."""

    procs: list[Any] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    """Peak RSS of each worker (bytes) over the samples taken."""
    rss_last: list[int] = field(default_factory=list)

    def start(self, settings: Any, workdir: Path, count: int) -> None:
        from pipelines.runtime.process import ManagedProcess  # noqa: PLC0415

        for i in range(count):
            proc = ManagedProcess(
                f"bench-worker-{i}",
                [sys.executable, "-m", "pipelines.cli", "worker", "--loglevel", "warning"],
                log_path=workdir / f"{settings.app_id}-worker-{i}.log",
                env={**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"},
                cwd=REPO,
            )
            proc.start()
            self.procs.append(proc)
        self.cpu_s = [0.0] * count
        self.rss = [0] * count
        self.rss_last = [0] * count

    def sample(self) -> None:
        import psutil  # noqa: PLC0415

        for i, proc in enumerate(self.procs):
            with contextlib.suppress(psutil.Error, TypeError):
                ps = psutil.Process(proc.pid)
                t = ps.cpu_times()
                self.cpu_s[i] = t.user + t.system
                self.rss_last[i] = ps.memory_info().rss
                self.rss[i] = max(self.rss[i], self.rss_last[i])

    def alive(self) -> bool:
        return all(p.alive() for p in self.procs)

    async def stop(self) -> list[int | None]:
        await asyncio.gather(*(asyncio.to_thread(p.stop, 30.0) for p in self.procs))
        return [p.returncode for p in self.procs]


def rss_window(readings: list[list[int]]) -> list[dict[str, float]]:
    """Per worker, from readings taken in turn (each a list of every worker's RSS in bytes):
    the first, lowest, median and highest, in MiB. The median is the figure: one reading can
    fall on a transient (a timer's pass over the rooms) that the next heap trim gives back."""
    mib = 2**20
    return [
        {"first": round(r[0] / mib, 1), "min": round(min(r) / mib, 1),
         "median": round(statistics.median(r) / mib, 1), "max": round(max(r) / mib, 1),
         "readings": len(r)}
        for r in zip(*readings, strict=True)
    ]  # fmt: skip


@dataclass
class Seen:
    """Level events seen on the levels topic: ids and when (monotonic) each first appeared."""

    first_at: float | None = None
    at: dict[str, float] = field(default_factory=dict)
    records: int = 0


READ_WAIT_MS = 10
"""Fetch wait of the bench's own readers (levels, and the latency baseline): a latency figure
should be when a record can be read, not when a long-polling fetch happened to return
(pipelines/streaming/fetchwait.py)."""


async def read_levels(
    bootstrap: str,
    topic: str,
    seen: Seen,
    stop: asyncio.Event,
    on_event: Callable[[str, float], None] | None = None,
) -> None:
    """Follow the levels topic (manual assignment, no group) until ``stop``."""
    import msgspec  # noqa: PLC0415
    from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415

    class _Id(msgspec.Struct):
        eventId: str  # noqa: N815 (the wire name)

    decode = msgspec.json.Decoder(_Id).decode
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=READ_WAIT_MS
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=50, max_records=10_000)
            now = time.monotonic()
            for messages in batches.values():
                for m in messages:
                    seen.records += 1
                    if seen.first_at is None:
                        seen.first_at = now
                    event_id = decode(m.value).eventId
                    if event_id not in seen.at:
                        seen.at[event_id] = now
                        if on_event is not None:
                            on_event(event_id, time.time())
    finally:
        await consumer.stop()


async def drain_run(
    settings: Any,
    messages: list[tuple[int, bytes, bytes, int]],
    expected: set[str],
    workers: int,
    workdir: Path,
    progress: Any,
    label: str,
    timeout_s: float,
    baseline: bool = True,
    settle_s: float = 0.0,
    window_s: float = 0.0,
) -> dict[str, Any]:
    """Pre-fill, time a bare consumer, then ``workers`` worker processes until every expected
    event is on the levels topic. Rates are over first event -> last expected event. RSS is
    read ``settle_s`` after that, then every 0.25 s for ``window_s``: each worker's median of
    those readings is its ``worker_rss_end_mb`` (see :data:`MEMORY_WINDOW_S`)."""
    bootstrap = str(settings.kafka_bootstrap_servers)
    samples = sum(m[3] for m in messages)
    out: dict[str, Any] = {"samples": samples, "messages": len(messages), "workers": workers}
    out["prefill_s"] = round(
        await produce(bootstrap, settings.topic_stats, messages, progress, f"{label}: prefill"), 2
    )
    deadline = time.monotonic() + timeout_s
    if baseline:
        took = await bare_drain(bootstrap, settings.topic_stats, len(messages), deadline)
        out["baseline_aiokafka_s"] = round(took, 3)
        out["baseline_aiokafka_samples_per_s"] = round(samples / took)
        out["baseline_aiokafka_msgs_per_s"] = round(len(messages) / took)
    seen = Seen()
    stop = asyncio.Event()
    reader = asyncio.create_task(read_levels(bootstrap, settings.topic_levels, seen, stop))
    procs = Workers()
    task = progress.add(f"{label}: level events", len(expected))
    started = time.monotonic()
    procs.start(settings, workdir, workers)
    cpu_at_first: float | None = None
    complete_at: float | None = None
    try:
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            procs.sample()
            if cpu_at_first is None and seen.first_at is not None:
                cpu_at_first = sum(procs.cpu_s)
            matched = sum(1 for i in expected if i in seen.at) if len(seen.at) else 0
            progress.update(task, matched)
            if matched >= len(expected):
                complete_at = max(seen.at[i] for i in expected)
                break
            if not procs.alive() or reader.done():
                break
        await asyncio.sleep(settle_s)  # let the worker's memory settle (last flushes, GC)
        procs.sample()
        readings = [list(procs.rss_last)]
        window_end = time.monotonic() + window_s
        while time.monotonic() < window_end:
            await asyncio.sleep(0.25)
            procs.sample()
            readings.append(list(procs.rss_last))
    finally:
        stop.set()
        with contextlib.suppress(BaseException):
            await reader
        exit_codes = await procs.stop()
    progress.update(task, len(expected), final=True)
    out["complete"] = complete_at is not None
    if seen.first_at is not None:
        out["startup_to_first_event_s"] = round(seen.first_at - started, 2)
        end = complete_at or time.monotonic()
        out["drain_s"] = round(end - seen.first_at, 2)
        done = samples if complete_at else None
        span = max(end - seen.first_at, 0.05)  # one reader poll
        out["samples_per_s"] = round(done / span) if done else None
    else:
        out["samples_per_s"] = None
    out["events_expected"] = len(expected)
    out["events_seen"] = sum(1 for i in seen.at if not i.endswith((":stale", ":expired")))
    out["stale_events_seen"] = sum(1 for i in seen.at if i.endswith(":stale"))
    out["worker_cpu_s"] = round(sum(procs.cpu_s) - (cpu_at_first or 0.0), 2)
    if out.get("samples_per_s") and out["worker_cpu_s"]:
        out["worker_cpu_us_per_sample"] = round(out["worker_cpu_s"] * 1e6 / samples, 1)
    out["worker_rss_mb"] = [round(r / 2**20, 1) for r in procs.rss]
    window = rss_window(readings)
    out["worker_rss_end_mb"] = [w["median"] for w in window]
    out["worker_rss_window_mb"] = window
    out["worker_exit_codes"] = exit_codes
    if baseline and out.get("samples_per_s"):
        out["ratio_to_baseline"] = round(
            out["samples_per_s"] / out["baseline_aiokafka_samples_per_s"], 4
        )
    return out


# ----------------------------------------------------------------------------- sections


def section_engine(sizes: BenchSizes, progress: Any) -> dict[str, Any]:
    from benchmarks.engine import run  # noqa: PLC0415

    progress.note(f"engine: {sizes.engine_samples:,} samples x {sizes.engine_repeat}")
    return run(samples=sizes.engine_samples, seed=sizes.seed, repeat=sizes.engine_repeat)


async def section_drain(base: Any, sizes: BenchSizes, workdir: Path, progress: Any) -> dict:
    progress.note(
        f"drain: generating {sizes.drain_samples:,} samples of {sizes.drain_participants:,}"
        " participants"
    )
    samples = bench_samples(sizes.drain_samples, sizes.drain_participants, sizes.seed)
    expected = expected_event_ids(samples)
    out: dict[str, Any] = {"participants": sizes.drain_participants}
    settings = _fresh_settings(base, workdir, "drain", sizes.partitions)
    out["envelope"] = await drain_run(
        settings,
        envelopes(samples, sizes.partitions),
        expected,
        1,
        workdir,
        progress,
        "drain (envelopes)",
        sizes.timeout_s,
    )
    out["envelope"]["samples_per_envelope"] = ENVELOPE_SAMPLES
    single = samples[: sizes.single_samples]
    settings = _fresh_settings(base, workdir, "single", sizes.partitions)
    out["single"] = await drain_run(
        settings,
        single_messages(single, sizes.partitions),
        expected_event_ids(single),
        1,
        workdir,
        progress,
        "drain (bare samples)",
        sizes.timeout_s,
    )
    return out


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "count": 0}
    qs = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    return {
        "p50_ms": round(qs[49], 1),
        "p95_ms": round(qs[94], 1),
        "p99_ms": round(qs[98], 1),
        "max_ms": round(max(values), 1),
        "count": len(values),
    }


JOIN_S = 1.0
"""The latency section's first second: every participant's first sample (all join at once)."""


async def section_latency(base: Any, sizes: BenchSizes, workdir: Path, progress: Any) -> dict:
    """Offered load in ticks of 100 ms; each tick's samples go out as envelopes per partition
    (what a publisher flushing every 100 ms sends). Latency = level event seen - produce."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: PLC0415

    from pipelines.contracts import encode  # noqa: PLC0415
    from pipelines.streaming.levels import PartitionOf  # noqa: PLC0415

    rate, seconds = sizes.latency_rate, sizes.latency_seconds
    participants = max(rate, 1)  # one sample per participant per second
    steps = max(int(seconds), 1)
    progress.note(f"latency: {rate:,} samples/s for {steps} s ({participants:,} participants)")
    samples = bench_samples(participants * steps, participants, sizes.seed + 7)
    settings = _fresh_settings(base, workdir, "latency", sizes.partitions)
    bootstrap = str(settings.kafka_bootstrap_servers)
    partition_of = PartitionOf(sizes.partitions)
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    raw_latencies: list[float] = []

    joins_until: list[float] = [float("inf")]  # wall time when every participant has joined
    after_joins: list[float] = []

    def on_event(event_id: str, wall: float) -> None:
        t = sent_at.get(event_id)
        if t is not None:
            latencies.append((wall - t) * 1000)
            if t >= joins_until[0]:
                after_joins.append((wall - t) * 1000)

    seen = Seen()
    stop = asyncio.Event()
    reader = asyncio.create_task(
        read_levels(bootstrap, settings.topic_levels, seen, stop, on_event)
    )

    async def bare_reader() -> None:
        """The baseline: the same messages, produce -> consume, no worker in between."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=READ_WAIT_MS
        )
        await consumer.start()
        try:
            tps = [TopicPartition(settings.topic_stats, p) for p in range(sizes.partitions)]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=50, max_records=10_000)
                now = time.time() * 1000
                for messages in batches.values():
                    for m in messages:
                        if m.headers:
                            continue
                        raw_latencies.append(now - m.timestamp)
        finally:
            await consumer.stop()

    procs = Workers()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=2, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    out: dict[str, Any] = {"offered_samples_per_s": rate, "seconds": steps}
    try:
        # Warm up: the worker must have joined its group and scored once before we time.
        procs.start(settings, workdir, 1)
        warm = samples[0]
        await producer.send_and_wait(
            settings.topic_stats,
            encode(warm),
            key=warm.participant_sid.encode(),
            partition=partition_of(warm.participant_sid),
            headers=[("warmup", b"1")],
        )
        deadline = time.monotonic() + sizes.timeout_s
        while not seen.at and time.monotonic() < deadline and procs.alive():
            await asyncio.sleep(0.1)
        if not seen.at:
            raise RuntimeError("latency: the worker produced no event for the warm-up sample")
        baseline = asyncio.create_task(bare_reader())
        await asyncio.sleep(0.5)
        task = progress.add("latency: offered samples", len(samples) - participants)
        tick = 0.1
        per_tick = max(int(rate * tick), 1)
        body = samples[participants:]  # the warm-up participant's first step was sent
        began = time.monotonic()
        joins_until[0] = time.time() + JOIN_S
        sent = 0
        for start in range(0, len(body), per_tick):
            chunk = body[start : start + per_tick]
            groups: dict[int, list[Any]] = {}
            for s in chunk:
                groups.setdefault(partition_of(s.participant_sid), []).append(s)
            now = time.time()
            for p, group in groups.items():
                for s in group:
                    sent_at[f"{s.participant_sid}:{s.seq}"] = now
                value = b'{"schema":"netquality.stats.batch.v1","samples":['
                value += b",".join(encode(s) for s in group) + b"]}"
                await producer.send(
                    settings.topic_stats, value, key=group[0].participant_sid.encode(), partition=p
                )
            sent += len(chunk)
            progress.update(task, sent)
            next_at = began + (start // per_tick + 1) * tick
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await producer.flush()
        out["achieved_samples_per_s"] = round(sent / (time.monotonic() - began))
        progress.update(task, sent, final=True)
        # Let the last events arrive.
        settle = time.monotonic() + 10
        while time.monotonic() < settle:
            await asyncio.sleep(0.25)
            procs.sample()
        stop.set()
        await baseline
    finally:
        stop.set()
        with contextlib.suppress(BaseException):
            await reader
        await producer.stop()
        out["worker_exit_codes"] = await procs.stop()
    out["worker"] = _percentiles(latencies)
    out["worker_after_joins"] = _percentiles(after_joins)
    out["baseline_broker_round_trip"] = _percentiles(raw_latencies)
    p99, b99 = out["worker"]["p99_ms"], out["baseline_broker_round_trip"]["p99_ms"]
    out["ratio_p99_to_baseline"] = round(p99 / b99, 2) if p99 and b99 else None
    out["note"] = (
        "latency of the samples that produced a level event (the first sample of every "
        "participant does, later ones on a change); the first second is every participant's "
        f"first sample at once (a join storm); worker_after_joins: samples sent after the "
        f"first {JOIN_S:g} s"
    )
    return out


def section_sink(sizes: BenchSizes, progress: Any) -> dict[str, Any]:
    from benchmarks.sink import run  # noqa: PLC0415

    progress.note(f"sink: {sizes.sink_rows:,} rows")
    return run(rows=sizes.sink_rows, seed=sizes.seed, repeat=sizes.sink_repeat, progress=False)


MEMORY_ACTIVE_S = 600.0
"""How long the memory section's participants count as active (staleness threshold)."""
MEMORY_SETTLE_S = 6.0
"""Wait after the last first level event before RSS is read: the room stages finish the
storm's last events (~3-4 s) and the heap trim runs."""
MEMORY_WINDOW_S = 10.0
"""Then RSS is read every 0.25 s for this long, and the figure is the median reading. A few
seconds after the storm the alerts timer releases the storm's level events, which the room
alerts hold for the allowed lateness (trackers, room summaries, the region alert states
re-encoded): ~20-28 MiB for ~4 s, given back by the next heap trim. Where that fell on the
single reading at 6 s, the figure moved by ~250 bytes per participant between identical
runs (2026-11-24: RSS every 0.25 s for 40 s after the storm, py-spy dumps during the rise;
docs/performance.md). The highest reading is kept too, as is the peak."""


async def section_memory(base: Any, sizes: BenchSizes, workdir: Path, progress: Any) -> dict:
    """RSS of one worker holding ``memory_participants`` states, against the idle worker."""
    n = sizes.memory_participants
    progress.note(f"memory: {n:,} participants, one sample each")
    samples = bench_samples(n, n, sizes.seed + 3)
    # Each participant sends one sample, then nothing. Left alone, each would go stale 10 s
    # after its sample, while the storm is still being drained, so the figure would mix the
    # states held with a second storm (every participant's stale event, every room and
    # region alerting: 600-700 MB). Active participants: staleness and expiry are pushed
    # past the measurement.
    thresholds = workdir / "memory-thresholds.json"
    thresholds.write_text(json.dumps({"stale_after_s": MEMORY_ACTIVE_S}))
    settings = _fresh_settings(base, workdir, "memory", sizes.partitions).with_overrides(
        thresholds_file=thresholds, participant_ttl_s=2 * MEMORY_ACTIVE_S
    )
    idle_procs = Workers()
    idle_procs.start(settings, workdir, 1)
    # The idle baseline: the same worker before any sample, once it has joined its group.
    await asyncio.sleep(12.0)
    idle_procs.sample()
    idle_rss = idle_procs.rss[0]
    await idle_procs.stop()
    expected = {f"{s.participant_sid}:{s.seq}" for s in samples}  # every first sample emits
    out = await drain_run(
        settings,
        envelopes(samples, sizes.partitions),
        expected,
        1,
        workdir,
        progress,
        "memory: drain",
        min(sizes.timeout_s, 240.0),
        baseline=False,
        settle_s=MEMORY_SETTLE_S,
        window_s=MEMORY_WINDOW_S,
    )
    loaded_mb = max(out["worker_rss_end_mb"], default=0.0)
    peak_mb = max(out["worker_rss_mb"], default=0.0)
    window = out["worker_rss_window_mb"][0] if out["worker_rss_window_mb"] else {}

    def per_participant(rss_mb: float | None) -> int | None:
        return round((rss_mb * 2**20 - idle_rss) / n) if rss_mb else None

    return {
        "participants": n,
        "idle_rss_mb": round(idle_rss / 2**20, 1),
        "loaded_rss_mb": loaded_mb,
        "peak_rss_mb": peak_mb,
        "bytes_per_participant": per_participant(loaded_mb),
        "peak_bytes_per_participant": per_participant(peak_mb),
        "window_rss_mb": window or None,
        "first_reading_bytes_per_participant": per_participant(window.get("first")),
        "window_max_bytes_per_participant": per_participant(window.get("max")),
        "drain_samples_per_s": out.get("samples_per_s"),
        "complete": out["complete"],
        "first_events_seen": out["events_seen"],
        "stale_events_seen": out["stale_events_seen"],
        "note": f"loaded = the median of RSS readings every 0.25 s from {MEMORY_SETTLE_S:.0f} to "
        f"{MEMORY_SETTLE_S + MEMORY_WINDOW_S:.0f} s after the worker took in one sample of every "
        "participant (all states held, none stale; first_reading = the one at "
        f"{MEMORY_SETTLE_S:.0f} s, as measured until 2026-11-24); peak = the highest RSS seen "
        "while it took them in (backlog buffers included)",
    }


async def section_scale(base: Any, sizes: BenchSizes, workdir: Path, progress: Any) -> dict:
    samples = bench_samples(sizes.scale_samples, sizes.scale_participants, sizes.seed + 5)
    expected = expected_event_ids(samples)
    out: dict[str, Any] = {"samples": len(samples), "partitions": sizes.partitions}
    for workers in (1, 2):
        settings = _fresh_settings(base, workdir, f"scale{workers}", sizes.partitions)
        run = await drain_run(
            settings,
            envelopes(samples, sizes.partitions),
            expected,
            workers,
            workdir,
            progress,
            f"scale: {workers} worker(s)",
            sizes.timeout_s,
            baseline=workers == 1,
        )
        out[f"workers_{workers}"] = run
    one, two = out["workers_1"].get("samples_per_s"), out["workers_2"].get("samples_per_s")
    out["ratio_2_to_1"] = round(two / one, 2) if one and two else None
    return out


# ----------------------------------------------------------------------------- the run


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def run(
    sections: Iterable[str] = SECTIONS,
    sizes: BenchSizes | None = None,
    out_dir: Path | None = None,
    progress: bool = True,
    settings: Any = None,
) -> dict[str, Any]:
    """Run the chosen sections; the JSON-ready result (also written as Markdown).

    ``settings`` defaults to ``Settings.from_env()`` (the embedded broker when
    ``KAFKA_BOOTSTRAP_SERVERS`` is unset)."""
    _benchmarks_importable()
    from pipelines.config import Settings  # noqa: PLC0415
    from pipelines.runtime import Runtime  # noqa: PLC0415

    sizes = sizes or BenchSizes()
    chosen = [s for s in SECTIONS if s in set(sections)]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    bar = Progress(progress)
    began = time.monotonic()
    result: dict[str, Any] = {"benchmark": "netquality.bench", "machine": machine()}
    result["sizes"] = {k: v for k, v in sizes.__dict__.items()}
    workdir = Path(tempfile.mkdtemp(prefix="nq-bench-"))
    kafka = [s for s in chosen if s in ("drain", "latency", "memory", "scale")]
    try:
        if "engine" in chosen:
            result["engine"] = _timed(lambda: section_engine(sizes, bar))
        if kafka:
            base = (settings or Settings.from_env()).with_overrides(state_dir=workdir / "runtime")
            with Runtime(base, database=False) as runtime:
                resolved = runtime.settings
                for name in kafka:
                    fn = {
                        "drain": section_drain,
                        "latency": section_latency,
                        "memory": section_memory,
                        "scale": section_scale,
                    }[name]
                    result[name] = _timed(
                        lambda fn=fn: asyncio.run(fn(resolved, sizes, workdir, bar))
                    )
        if "sink" in chosen:
            result["sink"] = _timed(lambda: section_sink(sizes, bar))
    finally:
        bar.close()
        if os.environ.get("NETQUALITY_BENCH_KEEP"):
            print(f"work dir kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    result["elapsed_s"] = round(time.monotonic() - began, 1)
    result["machine"]["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    target = (out_dir or Path("var/bench")) / "results.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(markdown(result))
    result["markdown"] = str(target)
    return result


def _timed(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    load = os.getloadavg()[0]
    began = time.monotonic()
    out = fn()
    out["section_s"] = round(time.monotonic() - began, 1)
    out["load_average_1m"] = round(load, 2)
    return out


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def rows(result: dict[str, Any]) -> list[tuple[str, Any, str, Any, Any, str]]:
    """(figure, value, baseline name, baseline value, ratio, unit) for the table."""
    out: list[tuple[str, Any, str, Any, Any, str]] = []
    for mix in ("steady", "turbulent"):
        mix_result = _get(result, "engine", mix) or {}
        # Each variant of the core measured (compiled and pure), each with its own baseline.
        for variant in ("compiled", "pure"):
            e = mix_result.get(variant)
            if not e:
                continue
            for path in ("single", "batch"):
                out.append(
                    (
                        f"engine {path} ({mix}, {variant})",
                        e.get(f"{path}_samples_per_s"),
                        "msgspec decode",
                        e.get("baseline_json_decode_samples_per_s"),
                        e.get(f"{path}_vs_baseline"),
                        "samples/s, one core",
                    )
                )
    for kind in ("envelope", "single"):
        d = _get(result, "drain", kind)
        if d:
            out.append(
                (
                    f"drain, 1 worker ({'envelopes' if kind == 'envelope' else 'bare samples'})",
                    d.get("samples_per_s"),
                    "bare aiokafka consumer",
                    d.get("baseline_aiokafka_samples_per_s"),
                    d.get("ratio_to_baseline"),
                    "samples/s",
                )
            )
    lat = result.get("latency")
    if lat:
        runs = [("worker", q, "") for q in ("p50_ms", "p95_ms", "p99_ms")]
        runs += [("worker_after_joins", q, ", after the joins") for q in ("p50_ms", "p99_ms")]
        for key, q, suffix in runs:
            w, b = _get(lat, key, q), _get(lat, "baseline_broker_round_trip", q)
            out.append(
                (
                    f"latency {q[:3]} at {lat['offered_samples_per_s']:,}/s{suffix}",
                    w,
                    "broker round trip",
                    b,
                    round(w / b, 2) if w and b else None,
                    "ms",
                )
            )
    s = result.get("sink")
    if s:
        out.append(
            (
                "sink",
                s.get("sink_rows_per_s"),
                "plain COPY",
                s.get("copy_rows_per_s"),
                s.get("ratio"),
                "rows/s",
            )
        )
    m = result.get("memory")
    if m:
        out.append(
            (
                f"memory at {m['participants']:,} participants",
                m.get("bytes_per_participant"),
                "idle worker RSS (MiB)",
                m.get("idle_rss_mb"),
                None,
                "bytes RSS / participant",
            )
        )
    sc = result.get("scale")
    if sc:
        out.append(
            (
                "drain, 2 workers",
                _get(sc, "workers_2", "samples_per_s"),
                "1 worker",
                _get(sc, "workers_1", "samples_per_s"),
                sc.get("ratio_2_to_1"),
                "samples/s",
            )
        )
    return out


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# netquality bench",
        "",
        f"{m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, load "
        f"{m['load_average_1m']} at start, {m.get('load_average_1m_end', '?')} at end; "
        f"{result.get('elapsed_s', '?')} s.",
        "",
        "| figure | value | baseline | baseline value | ratio | unit | load (1 min) |",
        "|---|---:|---|---:|---:|---|---:|",
    ]
    loads = {
        "engine": "engine",
        "drain": "drain",
        "latency": "latency",
        "sink": "sink",
        "memory": "memory",
        "2 workers": "scale",
    }
    for figure, value, base_name, base, ratio, unit in rows(result):
        section = next((v for k, v in loads.items() if k in figure), "")
        load = _get(result, section, "load_average_1m")
        lines.append(
            f"| {figure} | {_fmt(value)} | {base_name} | {_fmt(base)} | {_fmt(ratio)} | {unit} "
            f"| {_fmt(load)} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 100:
        return f"{value:g}"
    if isinstance(value, int | float):
        return f"{value:,.0f}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """``netquality bench`` / ``python benchmarks/bench.py``."""
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="netquality bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def add_arguments(parser: Any) -> None:
    defaults = BenchSizes()
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated, of {','.join(SECTIONS)}"
    )
    for name, value in defaults.__dict__.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out-dir", type=Path, default=Path("var/bench"))
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run_from_args(args: Any) -> int:
    sizes = BenchSizes(**{k: getattr(args, k) for k in BenchSizes().__dict__})
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    result = run(sections, sizes, args.out_dir, progress=not args.quiet)
    print(json.dumps(result, indent=2))
    print(f"markdown table: {result['markdown']}", file=sys.stderr)
    return 0
