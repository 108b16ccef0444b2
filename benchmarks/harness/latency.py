"""The latency section: produce -> level event at a fixed offered load, beside the broker's
own produce -> consume round trip of the same messages."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.harness.broker import READ_WAIT_MS, Seen, fresh_settings, read_levels
from benchmarks.harness.inputs import bench_samples
from benchmarks.harness.processes import Workers
from benchmarks.harness.sizes import BenchSizes


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
    samples = bench_samples(participants * steps, participants, sizes.seed + 7, sizes.topology)
    settings = fresh_settings(base, workdir, "latency", sizes.partitions)
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
