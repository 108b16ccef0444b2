"""The worker's heap trim: freed big buffers that glibc kept on its heap leave the process.

Measured in a fresh interpreter (RSS is per process): after a 4 MiB buffer (a fetched record
set) is freed, glibc serves big buffers from its heap; 40 MB of ~400 KiB buffers, each beside
a small object that outlives it (as envelopes sit among the states a worker keeps), are freed
and the process keeps their pages (6-40 MB here) until :func:`trim_heap`.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from pipelines.streaming.faust.worker import attach_heap_trim
from pipelines.worker import HeapTrimPolicy, trim_heap

PROBE = """
from pipelines.worker import trim_heap
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) * 1024
warm = bytearray(4 * 2**20)
del warm
before = rss()
kept, big = [], []
for i in range(100):
    big.append(bytearray(400 * 1024))
    kept.append(bytearray(600))
del big
kept_pages = rss() - before
assert trim_heap()
print(kept_pages, rss() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS from /proc, glibc")
def test_freed_big_buffers_leave_the_process_once_trimmed() -> None:
    if not trim_heap():
        pytest.skip("no malloc_trim: not glibc")
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    kept, after = (int(n) for n in out.stdout.split())
    assert kept > 4 * 2**20  # what glibc keeps on its own
    assert after < kept - 4 * 2**20


def test_the_trim_runs_as_a_timer_off_the_event_loop() -> None:
    timers: list = []

    class _App:
        def timer(self, interval: float):
            def register(fn):
                timers.append((interval, fn))
                return fn

            return register

    attach_heap_trim(_App(), 0.5)  # type: ignore[arg-type]
    if not timers:
        pytest.skip("no malloc_trim: not glibc")
    ((interval, fn),) = timers
    assert interval == 0.5
    asyncio.run(fn())


class _Clocks:
    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def tick(self, seconds: float, cpu_share: float) -> None:
        self.wall += seconds
        self.cpu += seconds * cpu_share


def test_the_trim_runs_at_every_check_while_idle_and_seldom_while_busy() -> None:
    clocks = _Clocks()
    policy = HeapTrimPolicy(30.0, 0.5, wall=lambda: clocks.wall, cpu=lambda: clocks.cpu)
    trims = []
    for share in [0.1] * 5 + [1.0] * 40 + [0.05] * 3:  # idle, a 80 s backlog, idle again
        clocks.tick(2.0, share)
        trims.append(policy.due())
    assert trims[:5] == [True] * 5
    busy = trims[5:45]
    assert sum(busy) == 2 and busy.index(True) == 14  # 30 s after the last (idle) trim
    assert trims[45:] == [True] * 3  # the burst is over: its buffers go back at once
