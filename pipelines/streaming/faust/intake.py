"""Batches of a Faust stream in offset order, none skipped, none acknowledged before handled.

Two ways Faust 0.15 loses input records, both seen in our fault suite:

* ``FlowControlEvent.resume()`` clears every stream queue, also while the flow is already
  running, and table recovery calls it right after seeking the stream partitions, when the
  fetcher has already filled those queues. The consumer's position is past the cleared
  records, so the agent never sees them; the next commit steps over them once later offsets
  are acknowledged. Seen: a restarted worker never received offsets 300-368 of one partition;
  a later SIGKILL made the loss permanent (the replay came after newer samples had been
  applied, so the engine dropped it as old).
* ``take_events`` acknowledges a batch when its generator is closed, so a batch whose
  handler raised or was cancelled counts as done and is committed on the way out.

:class:`OrderedIntake` keeps, per source partition, the next offset the handler must see
(from the group's committed offset when a partition arrives). A record behind it is a replay
of something already handled and is skipped; a record ahead of it means records went missing:
the batch stops there for that partition, the consumer is sought back, and the records are
read again. Each batch holds an extra reference on its messages until the handler returns, so
Faust only acknowledges (and commits) what was handled. A handler that fails ends the worker
process (exit status 70): its in-memory state may be ahead of what it published, and only a
restart from the last commit and the changelog is sure to be right.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import faust
from faust.types import TP

from pipelines.observability import METRICS
from pipelines.streaming.stage import HeldBatches

log = logging.getLogger(__name__)

RESEEK_AFTER_S = 0.5
"""A gap still open this long after the last seek is sought again: a fetch already in flight
when we sought moves Faust's read offset past the gap again, and it then drops the records
read again as old (seen in tests/faults/test_dropped_records.py)."""
MAX_SEEKS = 60
"""Seeks to one missing offset (~30 s) before the gap is taken as real (a transaction marker,
say: offsets with no record behind them); logged as an error and counted."""
TAIL_CHECK_S = 2.0
"""How often a partition whose next offset has not moved is compared with the consumer's
position: records fetched and lost with nothing behind them reveal no gap by themselves."""
EXIT_STATUS_ON_FAILURE = 70
"""EX_SOFTWARE: what a worker exits with when a handler fails (the supervisor restarts it)."""


class OrderedIntake:
    """Admits events of a stream in offset order per partition (see the module docstring)."""

    def __init__(self, app: faust.App, agent: str) -> None:
        self.app = app
        self.agent = agent
        self.next_offset: dict[TP, int] = {}
        self._seeks: dict[TP, tuple[int, float, int]] = {}
        """tp -> (offset sought to, when, how many times)."""
        app.on_partitions_revoked.connect(self._on_revoked)

    async def _on_revoked(self, app: faust.App, revoked: Any, **kwargs: Any) -> None:
        self.forget(revoked)

    def forget(self, tps: Iterable[TP] | None = None) -> None:
        """After a rebalance: positions are learned again from the committed offsets."""
        if tps is None:
            self.next_offset.clear()
            self._seeks.clear()
            return
        for tp in tps:
            self.next_offset.pop(tp, None)
            self._seeks.pop(tp, None)

    async def admit(self, events: Sequence[faust.EventT]) -> list[faust.EventT]:
        """The events to handle now, in order, each holding an extra reference (see
        :meth:`release`). Replays are left to Faust's own acknowledgement; events after a gap,
        or of a partition this worker no longer owns, keep their extra reference for good, so
        they are never acknowledged from here and are read again."""
        assigned = _assignment(self.app)
        unknown = {e.message.tp for e in events if e.message.tp not in self.next_offset}
        if unknown:
            await self._learn(unknown & assigned)
        admitted: list[faust.EventT] = []
        blocked: set[TP] = set()
        for event in events:
            message = event.message
            tp = message.tp
            expected = self.next_offset.get(tp)
            if tp not in assigned or expected is None:
                message.incref()  # not ours (any more): never acknowledged from here
                continue
            offset = message.offset
            if offset < expected:
                continue  # handled before: a replay after a seek or a rebalance
            if offset > expected and (
                tp in blocked or not await self._gap(tp, expected, offset)
            ):
                blocked.add(tp)
                message.incref()  # comes again after the seek
                continue
            message.incref()
            admitted.append(event)
            self.next_offset[tp] = offset + 1
            self._seeks.pop(tp, None)
        return admitted

    async def watch_tail(self) -> None:
        """:meth:`check_sought` every :data:`RESEEK_AFTER_S` and :meth:`check_tail` every
        :data:`TAIL_CHECK_S`, for as long as the agent runs."""
        last: dict[TP, int] = {}
        ticks_per_check = max(1, round(TAIL_CHECK_S / RESEEK_AFTER_S))
        tick = 0
        while True:
            await asyncio.sleep(RESEEK_AFTER_S)
            tick += 1
            await self.check_sought()
            if tick % ticks_per_check == 0:
                await self.check_tail(last)

    async def check_sought(self) -> None:
        """A partition sought back :data:`RESEEK_AFTER_S` ago that has delivered nothing
        since is sought again. A fetch in flight during the seek can move Faust's read offset
        past the gap once more, and Faust then drops every record read again as old, so no
        later record would show the gap (seen in tests/faults/test_dropped_records.py: without
        this, each such race cost a :meth:`check_tail` round, ~4 s)."""
        now = time.monotonic()
        for tp, (target, at, _) in list(self._seeks.items()):
            if self.next_offset.get(tp) == target and now - at >= RESEEK_AFTER_S:
                await self._seek_if_behind(tp, target, "re-seek check")

    async def check_tail(self, last: dict[TP, int]) -> None:
        """A partition that made no progress since the last check (``last``) while the
        consumer is past its next offset lost its last records: seek back for them too."""
        for tp, expected in list(self.next_offset.items()):
            if last.get(tp) != expected:
                last[tp] = expected
                continue
            await self._seek_if_behind(tp, expected, "tail check")

    async def _seek_if_behind(self, tp: TP, expected: int, check: str) -> None:
        """Seek back to ``expected`` when the consumer's position is past it."""
        try:
            position = await self.app.consumer.position(tp)
            if position is not None and position > expected:
                await self._gap(tp, expected, position)
        except Exception as exc:  # rebalancing, stopping: look again next time
            log.debug("%s: %s of %s failed: %r", self.agent, check, tp, exc)

    @staticmethod
    def release(events: Iterable[faust.EventT]) -> None:
        """Drop the extra reference, as an acknowledgement: whichever of it and Faust's own
        (``take_events`` acks a batch when it fetches the next) comes last completes the
        message, so that its offset can be committed. A batch released straight after its
        handler ends with Faust's; one held past it (:class:`HeldBatches`) ends here."""
        for event in events:
            event.ack()

    async def _learn(self, tps: set[TP]) -> None:
        """Next offsets for newly seen partitions: the group's commit, else the log start."""
        if not tps:
            return
        committed = await committed_offsets(self.app, tps)
        missing = [tp for tp, offset in committed.items() if offset is None]
        earliest = await self.app.consumer.earliest_offsets(*missing) if missing else {}
        for tp in tps:
            offset = committed.get(tp)
            self.next_offset[tp] = offset if offset is not None else earliest.get(tp, 0)

    async def _gap(self, tp: TP, expected: int, seen: int) -> bool:
        """Records ``expected``..``seen - 1`` of ``tp`` did not arrive: seek back for them.
        True only when the gap is real (deleted by retention, or still missing after
        :data:`MAX_SEEKS` seeks): ``next_offset`` then moves on to ``seen``."""
        where = f"{tp.topic}[{tp.partition}]"
        earliest = (await self.app.consumer.earliest_offsets(tp)).get(tp, 0)
        if expected < earliest:
            log.error(
                "%s: offsets %d-%d of %s were deleted by retention before they were handled",
                self.agent, expected, min(earliest, seen) - 1, where,
            )  # fmt: skip
            METRICS.intake_gaps.labels(agent=self.agent, outcome="accepted").inc()
            self.next_offset[tp] = expected = min(earliest, seen)
            if expected == seen:
                return True
        target, at, seeks = self._seeks.get(tp, (-1, 0.0, 0))
        if target == expected and seeks >= MAX_SEEKS:
            log.error(
                "%s: offsets %d-%d of %s still missing after %d seeks; going on at %d",
                self.agent, expected, seen - 1, where, seeks, seen,
            )  # fmt: skip
            METRICS.intake_gaps.labels(agent=self.agent, outcome="accepted").inc()
            self.next_offset[tp] = seen
            self._seeks.pop(tp, None)
            return True
        now = time.monotonic()
        if target != expected or now - at >= RESEEK_AFTER_S:
            log.warning(
                "%s: offsets %d-%d of %s were skipped by the consumer; reading them again",
                self.agent, expected, seen - 1, where,
            )  # fmt: skip
            METRICS.intake_gaps.labels(agent=self.agent, outcome="reread").inc()
            await self.app.consumer.seek_wait({tp: expected})  # in the consumer thread
            self._seeks[tp] = (expected, now, seeks + 1 if target == expected else 1)
        return False


def _assignment(app: faust.App) -> set[TP]:
    try:
        return set(app.consumer.assignment())
    except Exception:  # not started, or between generations: nothing is ours
        return set()


async def committed_offsets(app: faust.App, tps: Iterable[TP]) -> dict[TP, int | None]:
    """The group's committed offset of each partition, from the broker (None: none yet)."""
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._ensure_consumer()
    out: dict[TP, int | None] = {}
    for tp in tps:
        offset = await thread.call_thread(consumer.committed, tp)
        out[tp] = offset if offset is not None and offset >= 0 else None
    return out


class EventBatch:
    """Admitted events as a stage sees them (a :class:`~pipelines.streaming.stage.InputBatch`):
    their Faust messages are the records, with no copy."""

    __slots__ = ("events", "records")

    def __init__(self, events: list[faust.EventT]) -> None:
        self.events = events
        self.records: list[Any] = [event.message for event in events]

    def release(self) -> None:
        OrderedIntake.release(self.events)


async def run_batches(
    intake: OrderedIntake,
    stream: faust.StreamT,
    handle: Callable[[EventBatch], Awaitable[Any]],
    *,
    size: int,
    within: float,
    held: HeldBatches | None = None,
) -> None:
    """The body of a batching agent: ``handle`` each admitted batch, in order. A handler
    that fails, or is cancelled while the worker is not stopping, ends the process (see the
    module docstring); when it is stopping, the batch stays unacknowledged and is replayed.

    With ``held``, a handler that returns False has deferred its state write: the batch is
    held, and released with the others by the flush that covers it (the handler's own, when
    it returns True, or one made meanwhile by a timer)."""
    app = intake.app
    watch = asyncio.ensure_future(intake.watch_tail())
    try:
        async for events in stream.take_events(size, within=within):
            admitted = await intake.admit(events)
            if not admitted:
                continue
            batch = EventBatch(admitted)
            try:
                durable = await handle(batch)
            except asyncio.CancelledError:
                if app.should_stop:
                    raise
                _exit(intake.agent, "was cancelled mid-batch while the worker kept running")
            except Exception:
                _exit(intake.agent, "failed")
            if held is None:
                batch.release()
                continue
            held.hold(batch)
            if durable is not False:
                held.release()
    finally:
        watch.cancel()


def _exit(agent: str, what: str) -> None:
    log.critical(
        "%s: handling a batch %s; exiting so that a restart replays it from the last "
        "committed offset and the changelog",
        agent,
        what,
        exc_info=True,
    )
    logging.shutdown()
    os._exit(EXIT_STATUS_ON_FAILURE)
