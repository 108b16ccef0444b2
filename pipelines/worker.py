"""``netquality worker``: the streaming worker process (levels, rollups and alerts agents).

Resolves the broker (embedded Tansu when ``KAFKA_BOOTSTRAP_SERVERS`` is unset), creates the
topics, and runs the Faust worker until SIGTERM/SIGINT, on which Faust stops the agents,
commits, and leaves the consumer group cleanly. The Faust side (the app with its agents, the
worker class) is :mod:`pipelines.streaming.faust.worker`; here is what is not Faust's.
"""

from __future__ import annotations

import asyncio
import gc
import logging

from pipelines.config import Settings
from pipelines.observability import logging_config, serve_metrics
from pipelines.streaming.faust.worker import QuietWorker, attach_heap_trim, build_worker_app
from pipelines.streaming.heap_trim import HeapTrimPolicy, trim_heap
from pipelines.streaming.topics import check_co_partitioned

log = logging.getLogger(__name__)

__all__ = [
    "HeapTrimPolicy", "QuietWorker", "attach_heap_trim", "build_worker_app", "run_worker",
    "trim_heap", "tune_gc",
]


GC_THRESHOLDS = (50_000, 20, 100)
"""Python's defaults are (700, 10, 10). A worker holds every participant's state (tens of
objects each) and decodes tens of thousands of small objects a second; with the defaults the
decoded samples of one step outlive a young collection and are promoted, so full collections
keep re-scanning every state. These cut the worker's CPU per sample by about a quarter on
the drain bench (66.8 -> 49-52 us, docs/performance.md); reference cycles are still
collected, a little later."""


def tune_gc() -> None:
    """Move what startup allocated out of the collector's sight, and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in this process until a signal stops it."""
    try:
        import uvloop  # noqa: PLC0415

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is a dependency, but optional in spirit
        pass
    from pipelines.runtime.service import service  # noqa: PLC0415

    with service(settings, "worker", database=False) as resolved:
        check_co_partitioned(resolved)
        app = build_worker_app(resolved)
        serve_metrics(resolved.metrics_port)
        tune_gc()
        worker = QuietWorker(
            app,
            loglevel=loglevel,
            quiet=True,
            logging_config=(
                logging_config(loglevel, resolved.log_format, "worker")
                if resolved.log_format != "text"
                else None
            ),
        )
        worker.execute_from_commandline()
