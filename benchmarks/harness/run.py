"""One bench run: the chosen sections in order, on one broker, timed, written as Markdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from benchmarks.harness.latency import section_latency
from benchmarks.harness.memory import section_memory
from benchmarks.harness.progress import Progress
from benchmarks.harness.report import markdown
from benchmarks.harness.sections import section_drain, section_engine, section_scale, section_sink
from benchmarks.harness.sizes import SECTIONS, BenchSizes


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
