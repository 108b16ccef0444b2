"""Giving the C heap's free pages back to the system while the worker is not busy."""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable
from typing import Any

HEAP_TRIM_INTERVAL_S = 2.0
"""How often the C heap's free pages go back to the system while the worker is not busy.
glibc serves big buffers from its heap once one big buffer was freed (its mmap threshold
adapts upwards, up to 32 MiB): the worker's fetched record sets (MiBs), ~360 KiB envelopes and
~190 KiB bundles, and it keeps their freed space: ~70-90 MB at 100,000 participants after a
join storm (docs/performance.md, memory). Fixing the threshold instead (each big buffer its
own mapping) cost ~20 % of the drain's CPU per sample."""

HEAP_TRIM_BUSY_INTERVAL_S = 30.0
"""How often while the worker is busy. A trim holds glibc's heap lock (1-18 ms) and the pages
it gives back fault in again on reuse: every 2 s through a backlog that cost 1-2 us per
sample (~4 % of the drain). A backlog's buffers are reused at once anyway; what matters is
that the worker gives them back when the burst is over, which the idle trims do."""

BUSY_CPU_SHARE = 0.5
"""Busy: the process used more than half a core since the last check."""


class HeapTrimPolicy:
    """When to trim: at every check while the process is mostly idle, and at most every
    ``busy_interval_s`` while it is busy. Clocks are passed in (pure; tested without sleeps)."""

    def __init__(
        self,
        busy_interval_s: float = HEAP_TRIM_BUSY_INTERVAL_S,
        busy_share: float = BUSY_CPU_SHARE,
        wall: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        self.busy_interval_s = busy_interval_s
        self.busy_share = busy_share
        self.wall, self.cpu = wall, cpu
        self.checked_wall, self.checked_cpu = wall(), cpu()
        self.trimmed_at = self.checked_wall

    def due(self) -> bool:
        """Called at each check; True when this check should trim."""
        wall, cpu = self.wall(), self.cpu()
        elapsed = wall - self.checked_wall
        busy = elapsed > 0 and (cpu - self.checked_cpu) / elapsed > self.busy_share
        self.checked_wall, self.checked_cpu = wall, cpu
        if busy and wall - self.trimmed_at < self.busy_interval_s:
            return False
        self.trimmed_at = wall
        return True


def trim_heap() -> bool:
    """Give the C heap's free pages back to the system (glibc ``malloc_trim``); False where
    the C library has none. Releases the GIL while it runs (ctypes)."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
