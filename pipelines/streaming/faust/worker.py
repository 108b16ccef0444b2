"""The worker's Faust app with every stage attached, and the Faust worker class it runs in
(the process around it is :mod:`pipelines.worker`)."""

from __future__ import annotations

import asyncio
import logging

import faust

from pipelines.config import Settings
from pipelines.quality import load_thresholds
from pipelines.streaming.faust.app import create_app
from pipelines.streaming.faust.declare import before_stop
from pipelines.streaming.faust.wiring import (
    attach_alerts,
    attach_attribution,
    attach_levels,
    attach_rollups,
)
from pipelines.streaming.heap_trim import HEAP_TRIM_INTERVAL_S, HeapTrimPolicy, _malloc_trim

log = logging.getLogger(__name__)


def build_worker_app(settings: Settings) -> faust.App:
    """The Faust app with every agent of the worker attached (settings must be resolved)."""
    app = create_app(settings)
    levels = attach_levels(app, settings, load_thresholds(settings.thresholds_file))
    attach_attribution(app, settings, levels)
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
        :func:`~pipelines.streaming.faust.declare.before_stop`), while the app still runs; a
        failing hook is logged and the stop goes on."""
        for hook in before_stop(self.app):
            try:
                await asyncio.wait_for(hook(), STOP_HOOK_TIMEOUT_S)
            except Exception:
                log.exception("a stop hook failed; stopping anyway")
        await super().on_stop()


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
