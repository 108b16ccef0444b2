"""``netquality worker`` whose stream queues lose every ``FAULT_DROP_EVERY``-th record.

Faust's ``flow_control.resume()`` clears every stream queue, and its table recovery calls it
after the fetcher has already filled them (pipelines/streaming/faust/intake.py): records that were
delivered vanish with the consumer's position already past them. This worker loses records
the same way, after they are queued, on every queue (the levels agent's and the rollup and
alerting stages'), without depending on timing: the agents must notice the gaps and read the
records again. Used by tests/faults/test_dropped_records.py.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from mode.utils.queues import FlowControlQueue

from pipelines.cli import main

EVERY = int(os.environ.get("FAULT_DROP_EVERY", "50"))
log = logging.getLogger("fault")
_put = FlowControlQueue.put_nowait_enhanced  # how Faust's conductor queues each record
_puts = [0]


def lossy_put(self: FlowControlQueue, value: Any, **callbacks: Any) -> bool:
    high = _put(self, value, **callbacks)
    _puts[0] += 1
    if _puts[0] % EVERY == 0 and self.qsize():
        self.get_nowait()  # the oldest queued record: delivered, then gone
        log.warning("fault: dropped a queued record (%d so far)", _puts[0] // EVERY)
    return high


FlowControlQueue.put_nowait_enhanced = lossy_put  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(["worker"]))
