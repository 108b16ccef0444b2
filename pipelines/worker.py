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
import time
from collections.abc import Callable
from typing import Any

import faust

from pipelines.config import Settings
from pipelines.observability import logging_config, serve_metrics
from pipelines.quality import load_thresholds
from pipelines.streaming.alerts import attach_alerts
from pipelines.streaming.app import create_app
from pipelines.streaming.declare import before_stop
from pipelines.streaming.levels import attach
from pipelines.streaming.rollups import attach_rollups
from pipelines.streaming.topics import check_co_partitioned

log = logging.getLogger(__name__)


def build_worker_app(settings: Settings) -> faust.App:
    """The Faust app with every agent of the worker attached (settings must be resolved)."""
    app = create_app(settings)
    levels = attach(app, settings, load_thresholds(settings.thresholds_file))
    attach_rollups(app, settings, levels)
    attach_alerts(app, settings, levels)
    attach_heap_trim(app)
    return app


STOP_HOOK_TIMEOUT_S = 30.0
"""Longest a stage's stop hook may take (publishing a few thousand minutes takes well under
a second); a stop must end even when the broker is gone."""


class QuietWorker(faust.Worker):
    """Faust's worker without its terminal spinner.

    The spinner sets the root logger to DEBUG so that it sees every record; aiokafka and
    Faust then build a log record per message produced and drop it: ~10 % of the worker's
    CPU on the hot path (py-spy, docs/performance.md). Without it the root keeps ``loglevel``.
    """

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None
        super().on_setup_root_logger(logger, level)

    async def on_stop(self) -> None:
        """A graceful stop: the stages' last words first (the rollups' open minutes,
        :func:`~pipelines.streaming.declare.before_stop`), while the app still runs; a
        failing hook is logged and the stop goes on."""
        for hook in before_stop(self.app):
            try:
                await asyncio.wait_for(hook(), STOP_HOOK_TIMEOUT_S)
            except Exception:
                log.exception("a stop hook failed; stopping anyway")
        await super().on_stop()


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


def attach_heap_trim(app: faust.App, interval_s: float = HEAP_TRIM_INTERVAL_S) -> None:
    """A timer that trims the heap off the event loop (see :data:`HEAP_TRIM_INTERVAL_S` and
    :class:`HeapTrimPolicy`)."""
    trim = _malloc_trim()
    if trim is None:
        return

    policy = HeapTrimPolicy()

    @app.timer(interval=interval_s)
    async def trim_free_heap() -> None:
        if policy.due():
            await asyncio.to_thread(trim, 0)

    del trim_free_heap


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
