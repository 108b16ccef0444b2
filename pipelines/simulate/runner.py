"""Drive a :class:`Simulation` into an output, paced in real time or as fast as possible.

Real time: second ``n``'s samples (stamped ``start_ms + n s + phase``) are published when the
wall clock reaches ``start_ms + (n + 1) s``, so they are never from the future.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipelines.contracts.stats import StatsSample
from pipelines.simulate.generator import Simulation
from pipelines.simulate.outputs import SampleOutput


@dataclass
class SimulationCounts:
    """What a run has published (live: read by progress views from another thread)."""

    seconds: int = 0
    samples: int = 0
    participants: set[str] = field(default_factory=set)
    started_at: float = field(default_factory=time.monotonic)

    @property
    def samples_per_s(self) -> float:
        elapsed = time.monotonic() - self.started_at
        return self.samples / elapsed if elapsed > 0 else 0.0


def run_simulation(
    sim: Simulation,
    output: SampleOutput,
    *,
    duration_s: int | None,
    realtime: bool,
    stop: threading.Event | None = None,
    counts: SimulationCounts | None = None,
    on_second: Callable[[int, list[StatsSample]], None] | None = None,
) -> SimulationCounts:
    """Publish second after second until ``duration_s`` or ``stop``; returns the counts."""
    stop = stop or threading.Event()
    counts = counts or SimulationCounts()
    while not stop.is_set() and (duration_s is None or sim.second < duration_s):
        if realtime:
            due_ms = sim.start_ms + (sim.second + 1) * 1000
            wait_s = due_ms / 1000.0 - time.time()
            if wait_s > 0 and stop.wait(wait_s):
                break
        second = sim.second
        samples = sim.tick()
        for sample in samples:
            output.publish(sample)
            counts.participants.add(sample.participant_sid)
        counts.samples += len(samples)
        counts.seconds = second + 1
        if on_second is not None:
            on_second(second, samples)
    output.flush()
    return counts
