"""The memory section: worker RSS per active participant, against the idle worker."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from benchmarks.harness.backlog import drain_run
from benchmarks.harness.broker import fresh_settings
from benchmarks.harness.inputs import bench_samples, envelopes
from benchmarks.harness.processes import Workers
from benchmarks.harness.sizes import BenchSizes

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
    settings = fresh_settings(base, workdir, "memory", sizes.partitions).with_overrides(
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
