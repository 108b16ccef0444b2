"""The worker processes a measurement starts, with their CPU time and RSS (psutil)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
"""The checkout (or site-packages): the workers' working directory."""


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
