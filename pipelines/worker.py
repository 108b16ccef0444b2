"""``netquality worker``: the streaming worker process (levels, rollups and alerts agents).

Resolves the broker (embedded Tansu when ``KAFKA_BOOTSTRAP_SERVERS`` is unset), creates the
topics, and runs the Faust worker until SIGTERM/SIGINT, on which Faust stops the agents,
commits, and leaves the consumer group cleanly.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging

import faust

from pipelines.config import Settings
from pipelines.observability import logging_config, serve_metrics
from pipelines.quality import load_thresholds
from pipelines.runtime import Runtime
from pipelines.streaming.alerts import attach_alerts
from pipelines.streaming.app import create_app
from pipelines.streaming.levels import attach
from pipelines.streaming.rollups import attach_rollups
from pipelines.streaming.topics import check_co_partitioned, ensure_topics

log = logging.getLogger(__name__)


def build_worker_app(settings: Settings) -> faust.App:
    """The Faust app with every agent of the worker attached (settings must be resolved)."""
    app = create_app(settings)
    levels = attach(app, settings, load_thresholds(settings.thresholds_file))
    attach_rollups(app, settings, levels)
    attach_alerts(app, settings, levels)
    return app


class QuietWorker(faust.Worker):
    """Faust's worker without its terminal spinner.

    The spinner sets the root logger to DEBUG so that it sees every record; aiokafka and
    Faust then build a log record per message produced and drop it: ~10 % of the worker's
    CPU on the hot path (py-spy, docs/performance.md). Without it the root keeps ``loglevel``.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)


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


MALLOC_MMAP_THRESHOLD = 128 * 1024
"""Allocations from this size up get their own mapping, returned to the system when freed.
glibc starts at this value but raises it after each large free (up to 32 MiB), so the
worker's big transient buffers (fetched record sets of MiBs, ~360 KiB envelopes, ~190 KiB
bundles) end up on the heap, whose freed space the process keeps: at 100,000 participants
~170 MB of RSS after a join storm (docs/performance.md, memory)."""
MALLOC_TRIM_THRESHOLD = 1024 * 1024
"""Free space at the heap's top above which glibc gives it back (its default is 128 KiB)."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>


def tune_malloc() -> bool:
    """Fix glibc's mmap and trim thresholds (see :data:`MALLOC_MMAP_THRESHOLD`); False where
    the C library is not glibc (nothing is changed)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
        and mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)
    )


def run_worker(settings: Settings, loglevel: str = "info") -> None:
    """Run the worker in this process until a signal stops it."""
    try:
        import uvloop  # noqa: PLC0415

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - uvloop is a dependency, but optional in spirit
        pass
    with Runtime(settings, database=False) as runtime:
        resolved = runtime.settings
        result = ensure_topics(resolved)
        log.info("topics ready: created %s, existing %s", result.created, result.existing)
        check_co_partitioned(resolved)
        app = build_worker_app(resolved)
        serve_metrics(resolved.metrics_port)
        tune_gc()
        tune_malloc()
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
