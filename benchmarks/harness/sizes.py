"""What the bench runs and how big: the sections and their sizes (``--sections``, one flag per
size). Kept apart so that building the ``netquality`` parser imports nothing else."""

from __future__ import annotations

from dataclasses import dataclass

SECTIONS = ("engine", "drain", "latency", "sink", "memory", "scale")


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
    topology: str = ""
    """What the mix's samples say of their call (``sfu``: every room attributes, the levels
    agent's two attribution hops carry its publishers' uplinks); empty: what the simulator
    says (its default scenario says nothing, so nothing is attributed)."""
    timeout_s: float = 300.0
    """Per measurement: a drain or latency run that takes longer reports what it saw."""
