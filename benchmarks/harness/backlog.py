"""One drain measurement: pre-fill a stats topic, time a bare consumer on it, then worker
processes until every expected level event is out, sampling their CPU and RSS."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.harness.broker import Seen, bare_drain, produce, read_levels
from benchmarks.harness.processes import Workers


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
    those readings is its ``worker_rss_end_mb`` (see ``memory.MEMORY_WINDOW_S``)."""
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
