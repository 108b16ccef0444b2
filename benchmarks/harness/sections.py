"""The engine, drain, sink and scale sections (latency and memory have their own modules)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.harness.backlog import drain_run
from benchmarks.harness.broker import fresh_settings
from benchmarks.harness.inputs import (
    ENVELOPE_SAMPLES,
    bench_samples,
    envelopes,
    expected_event_ids,
    single_messages,
)
from benchmarks.harness.sizes import BenchSizes


def section_engine(sizes: BenchSizes, progress: Any) -> dict[str, Any]:
    from benchmarks.engine import run  # noqa: PLC0415

    progress.note(f"engine: {sizes.engine_samples:,} samples x {sizes.engine_repeat}")
    return run(samples=sizes.engine_samples, seed=sizes.seed, repeat=sizes.engine_repeat)


async def section_drain(base: Any, sizes: BenchSizes, workdir: Path, progress: Any) -> dict:
    progress.note(
        f"drain: generating {sizes.drain_samples:,} samples of {sizes.drain_participants:,}"
        " participants"
    )
    samples = bench_samples(
        sizes.drain_samples, sizes.drain_participants, sizes.seed, sizes.topology
    )
    expected = expected_event_ids(samples)
    out: dict[str, Any] = {"participants": sizes.drain_participants}
    settings = fresh_settings(base, workdir, "drain", sizes.partitions)
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
    settings = fresh_settings(base, workdir, "single", sizes.partitions)
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


def section_sink(sizes: BenchSizes, progress: Any) -> dict[str, Any]:
    from benchmarks.sink import run  # noqa: PLC0415

    progress.note(f"sink: {sizes.sink_rows:,} rows")
    return run(rows=sizes.sink_rows, seed=sizes.seed, repeat=sizes.sink_repeat, progress=False)


async def section_scale(base: Any, sizes: BenchSizes, workdir: Path, progress: Any) -> dict:
    samples = bench_samples(
        sizes.scale_samples, sizes.scale_participants, sizes.seed + 5, sizes.topology
    )
    expected = expected_event_ids(samples)
    out: dict[str, Any] = {"samples": len(samples), "partitions": sizes.partitions}
    for workers in (1, 2):
        settings = fresh_settings(base, workdir, f"scale{workers}", sizes.partitions)
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
