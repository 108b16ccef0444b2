"""The worker's allocator setting: big transient buffers go back to the system when freed.

Measured in fresh interpreters (RSS is per process): after a 4 MiB buffer (a fetched record
set) is freed, 40 MB of ~400 KiB buffers, each allocated beside a small object that outlives
it (as envelopes sit among the states a worker keeps), then freed. With glibc's adaptive
threshold they land on the heap and the process keeps some of the pages (~6 MB here); with
:func:`pipelines.worker.tune_malloc` each has its own mapping and none stays.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipelines.worker import tune_malloc

PROBE = """
import sys
if sys.argv[1] == "tuned":
    from pipelines.worker import tune_malloc
    assert tune_malloc()
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
print(rss() - before)
"""


def _grown(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS from /proc, glibc")
def test_freed_big_buffers_leave_the_process() -> None:
    if not tune_malloc():
        pytest.skip("not glibc: nothing to tune")
    tuned, untuned = _grown("tuned"), _grown("default")
    assert tuned < 2 * 2**20
    assert untuned > tuned + 4 * 2**20  # the setting is what makes the difference
