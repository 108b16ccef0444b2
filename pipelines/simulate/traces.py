"""The real network traces shipped with the simulator, as 1 Hz capacity series.

Each trace file under ``traces/`` (see ``traces/ATTRIBUTION.md`` for origin and licence) becomes a
:class:`Trace`: capacity in bits/s for every second, looping at the end like mahimahi's ``mm-link``.
Reading is pure and cached; nothing here knows about participants or Kafka.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TRACES_DIR = Path(__file__).resolve().parent / "traces"
MIN_CAPACITY_BPS = 64_000.0
"""Floor of every capacity sample: a 0 in a 5 s FCC sample is a measurement gap, not a dead link."""
MAX_PLAUSIBLE_KBPS = 10_000_000
"""OpenNetLab's 4G_3mbps.json holds one 8 Gbit/s step: a sentinel, dropped (SOURCES.md)."""


@dataclass(frozen=True, slots=True)
class Trace:
    """One measured link: ``capacity_bps[i]`` is the capacity during second ``i``."""

    name: str
    family: str
    capacity_bps: tuple[float, ...]

    def at(self, second: int) -> float:
        """Capacity at ``second`` (loops: a trace shorter than the run repeats)."""
        return self.capacity_bps[second % len(self.capacity_bps)]

    @property
    def median_bps(self) -> float:
        ordered = sorted(self.capacity_bps)
        return ordered[len(ordered) // 2]


def _per_second(points: list[tuple[float, float]]) -> tuple[float, ...]:
    """Step function of (time_s, Mbit/s) points sampled once per second, in bits/s."""
    if not points:
        raise ValueError("empty trace")
    end = int(points[-1][0]) + 1
    out: list[float] = []
    i = 0
    for second in range(end):
        while i + 1 < len(points) and points[i + 1][0] <= second:
            i += 1
        out.append(max(points[i][1] * 1e6, MIN_CAPACITY_BPS))
    return tuple(out)


def _read_pensieve(path: Path) -> tuple[float, ...]:
    points = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            points.append((float(parts[0]), float(parts[1])))
    return _per_second(points)


def _read_5gophers_mobility(path: Path) -> dict[str, tuple[float, ...]]:
    """One series per throughput column (the driving traces have one per carrier)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if c.endswith("throughput_mbps")]
    return {
        c.removesuffix("throughput_mbps").rstrip("_").lower(): tuple(
            max(float(r[c]) * 1e6, MIN_CAPACITY_BPS) for r in rows if r[c]
        )
        for c in columns
    }


def _read_opennetlab(path: Path) -> tuple[float, ...]:
    """Time-weighted capacity per whole second of ``trace_pattern`` steps (kbit/s)."""
    steps = json.loads(path.read_text())["uplink"]["trace_pattern"]
    out: list[float] = []
    acc_ms = acc_kbits = 0.0
    for step in steps:
        capacity = float(step["capacity"])
        if capacity > MAX_PLAUSIBLE_KBPS:
            continue
        remaining = float(step["duration"])
        while remaining > 0:
            take = min(remaining, 1000.0 - acc_ms)
            acc_ms += take
            acc_kbits += capacity * take
            remaining -= take
            if acc_ms >= 1000.0:
                out.append(max(acc_kbits, MIN_CAPACITY_BPS))  # kbit/s x ms = bit/s
                acc_ms = acc_kbits = 0.0
    return tuple(out)


@cache
def load_traces() -> dict[str, Trace]:
    """Every shipped trace by name (``family/file``)."""
    traces: dict[str, Trace] = {}

    def add(family: str, path: Path, series: tuple[float, ...], variant: str = "") -> None:
        stem = path.stem if family in ("opennetlab", "5gophers") else path.name
        name = f"{family}/{stem}{'-' + variant if variant else ''}"
        traces[name] = Trace(name, family, series)

    for path in sorted((TRACES_DIR / "norway-3g").iterdir()):
        add("norway-3g", path, _read_pensieve(path))
    for path in sorted((TRACES_DIR / "fcc").iterdir()):
        add("fcc", path, _read_pensieve(path))
    for path in sorted((TRACES_DIR / "5gophers").glob("*-trace*.csv")):
        for variant, series in _read_5gophers_mobility(path).items():
            add("5gophers", path, series, variant)
    for path in sorted((TRACES_DIR / "opennetlab").glob("*.json")):
        add("opennetlab", path, _read_opennetlab(path))
    return traces


@cache
def access_rtts_s() -> tuple[float, ...]:
    """5Gophers RTT samples (three US carriers), seconds: the access network's share of RTT."""
    with (TRACES_DIR / "5gophers" / "round-trip-times.csv").open(newline="") as f:
        return tuple(float(r["rtt_ms"]) / 1000.0 for r in csv.DictReader(f) if r["rtt_ms"])


def traces_of(family: str) -> list[Trace]:
    """The traces of one family, in a stable order (seeded choices depend on it)."""
    return [t for name, t in sorted(load_traces().items()) if t.family == family]
