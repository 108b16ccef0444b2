"""``netquality sink``: levels, current levels, rollups, alerts and dead-letter counts -> Postgres.

The group loop (``pipelines.kafka.run_group``, shared with the notifier) and this writer, per
batch (one or more ``getmany`` polls):

1. decode each message; one that does not decode goes to the dead-letter topic;
2. deduplicate within the batch by table key (history: first copy; latest state: newest);
3. write everything in one transaction (:class:`BatchWriter`); a transient database error
   (connection lost, Postgres restarting) is retried with backoff, forever, holding the batch
   and its offsets: nothing is committed to Kafka that is not in Postgres;
4. dead-letter the rows Postgres refused permanently (the rest of the batch is written);
5. commit the batch's own offsets (explicitly, not the consumer's position).

Steps 1-2 of the next batch run while Postgres writes this one (step 3 runs in a thread), so
decoding and the database overlap, and every poll that arrives meanwhile joins that next batch
(up to ``MAX_BATCH`` records): the slower Postgres, the bigger (and cheaper per row) its
batches. Decoding yields to the event loop between partitions, so the fetch after it is in
flight meanwhile. Writes stay strictly in order, one at a time, and a
batch's offsets are committed only after its transaction (and every earlier one) has committed.

A crash between 3 and 5 replays the batch; the merges are idempotent, so replays (even of the
whole topics from the start) change nothing.

``current_levels`` comes from the levels topic alone, not from the compacted current-levels
topic (which the worker still produces, for room services): both carry the same bytes in the
same partition and order, so the newest event of a participant in a poll is its latest level,
and a ``departed`` event deletes the row, as the tombstone that follows it on the current
topic does. Each level event is then one Kafka record for the sink, not two.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
import psycopg
from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition

from pipelines.config import Settings
from pipelines.contracts import (
    ContractError,
    dead_letter_for,
    decode_alert,
    decode_deadletter,
    encode,
    make_dead_letter,
)
from pipelines.kafka import KafkaClients, run_group
from pipelines.kafka.group import Polled
from pipelines.observability import METRICS
from pipelines.quality.rollups import decode_rollup
from pipelines.runtime import libpq_url
from pipelines.storage.level_json import level_change_row_from_json
from pipelines.storage.rows import (
    DEPARTED_AT,
    EVENT_ID_AT,
    PARTICIPANT_AT,
    TS_AT,
    alert_row,
    current_level_row_from_history,
    ms_to_datetime,
    rollup_row,
)
from pipelines.storage.writer import (
    ALERTS,
    CURRENT_LEVELS,
    LEVEL_CHANGES,
    REGION_ROLLUPS,
    ROOM_ROLLUPS,
    Batch,
    BatchWriter,
    Reject,
    Row,
    is_transient,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BATCH = 20_000
"""Records per batch. Bigger batches mean fewer commits (Postgres fsyncs and Kafka offset
commits) and fewer ``current_levels`` rows per event (a participant's events in one batch
are one upsert); 20,000 level events are ~20 MB of JSON, written in well under a second.
A poll brings ~6,000 (a fetch); while Postgres writes one batch, the next grows by the polls
that come meanwhile, up to this: Postgres spent ~16 us per event with poll-sized batches,
~13 with these."""
MAX_PARTITION_FETCH_BYTES = 8 * 1024 * 1024
FETCH_MAX_BYTES = 64 * 1024 * 1024
"""aiokafka defaults (1 MiB per partition) cap a fetch at ~1,000 level events per partition."""
POLL_MS = 200
GROW_POLL_MS = 10
"""Poll wait while a batch waits for the write before it: more records join that batch."""


@dataclass
class SinkCounts:
    """What the sink has written since it started."""

    batches: int = 0
    rows: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    dead_letters: int = 0
    retries: int = 0
    last_commit_ms: int = 0
    records: int = 0
    """Kafka records whose offsets are committed."""
    first_records_s: float | None = None
    last_commit_s: float | None = None
    """``time.monotonic()`` of the first poll that returned records and of the last commit."""


@dataclass
class _Pending(Polled):
    batch: Batch = field(default_factory=Batch)
    history: dict[tuple[str, Any], Row] = field(default_factory=dict)
    current: dict[str, Row] = field(default_factory=dict)
    """The newest ``level_changes`` row per participant (a departed one deletes it)."""
    alerts: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    rollups: dict[tuple[str, str, int], tuple[Any, ...]] = field(default_factory=dict)
    bad: list[tuple[ConsumerRecord, str, str]] = field(default_factory=list)


class PostgresSink:
    """Consumes the level, alert, rollup and dead-letter topics into Postgres."""

    def __init__(self, settings: Settings) -> None:
        if not settings.kafka_bootstrap_servers or not settings.database_url:
            raise ValueError("PostgresSink needs resolved settings (see pipelines.runtime)")
        self.settings = settings
        self.counts = SinkCounts()
        self.topics = (
            settings.topic_levels,
            settings.topic_alerts,
            settings.topic_rollups,
            settings.topic_deadletter,
        )
        self.service = "sink"
        self._conn: psycopg.Connection[Any] | None = None
        self._writer: BatchWriter | None = None
        self._producer: AIOKafkaProducer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; leaves the group cleanly."""
        clients = KafkaClients(self.settings)
        consumer = clients.group_consumer(*self.topics, group_id=self.settings.sink_group)
        self._producer = clients.producer(linger_ms=5)
        await consumer.start()
        await self._producer.start()
        try:
            await run_group(
                consumer, self, stop, max_batch=MAX_BATCH, poll_ms=POLL_MS,
                grow_poll_ms=GROW_POLL_MS,
            )
        finally:
            await self._producer.stop()
            await consumer.stop()
            self._close()

    # --- the group loop's writer (pipelines.kafka.GroupWriter) -------------------------------

    def new_batch(self) -> _Pending:
        return self._new_pending()

    async def gather(
        self, records: dict[TopicPartition, list[ConsumerRecord]], batch: _Pending
    ) -> _Pending:
        if self.counts.first_records_s is None:
            self.counts.first_records_s = time.monotonic()
        return await self._gather(records, batch)

    async def write(self, batch: _Pending) -> None:
        """One transaction, then the dead letters of what did not decode or Postgres refused."""
        self._seal(batch)
        writer = self._ensure_writer()
        began = time.perf_counter()
        rejects = await asyncio.to_thread(writer.write, batch.batch)
        METRICS.batch_seconds.labels(service="sink").observe(time.perf_counter() - began)
        for merge, rows in batch.batch.rows.items():
            self.counts.rows[merge.table] += len(rows)
            METRICS.rows_written.labels(table=merge.table).inc(len(rows))
        assert self._producer is not None
        await self._dead_letter(self._producer, batch, rejects)

    def retry_kind(self, exc: Exception) -> str | None:
        """A transient database error (connection lost, Postgres restarting) is retried."""
        if not isinstance(exc, psycopg.Error) or not is_transient(exc):
            return None
        self.counts.retries += 1
        self._close()
        return "database_unavailable"

    def committed(self, batch: _Pending) -> None:
        self.counts.batches += 1
        self.counts.records += batch.records
        self.counts.last_commit_ms = int(time.time() * 1000)
        self.counts.last_commit_s = time.monotonic()

    def _new_pending(self) -> _Pending:
        pending = _Pending()
        pending.batch.deadletter_topic = self.settings.topic_deadletter
        return pending

    async def _collect(self, records: dict[TopicPartition, list[ConsumerRecord]]) -> _Pending:
        """One poll as one batch, ready to write."""
        pending = await self._gather(records, self._new_pending())
        self._seal(pending)
        return pending

    async def _gather(
        self, records: dict[TopicPartition, list[ConsumerRecord]], pending: _Pending
    ) -> _Pending:
        """Decode a poll into ``pending`` (a new batch, or one still waiting for Postgres:
        later polls of a partition only add newer records), partition by partition, yielding
        to the event loop between partitions: the fetcher sends the next fetch (and reads its
        answer) while this poll decodes, instead of only at the next ``getmany`` (which then
        waited for the broker every time: ~40 % of the loop's wall time in the profile)."""
        pending.add(records)
        for tp, batch in records.items():
            await asyncio.sleep(0)
            self._collect_partition(tp.topic, batch, pending)
        return pending

    def _seal(self, pending: _Pending) -> None:
        """The batch's rows per table, from what the polls gathered."""
        batch = pending.batch
        batch.rows[LEVEL_CHANGES] = list(pending.history.values())
        latest = pending.current.values()
        batch.rows[CURRENT_LEVELS] = [
            current_level_row_from_history(r) for r in latest if not r[DEPARTED_AT]
        ]
        # A departed participant's row goes, as the current topic's tombstone says.
        batch.deletes[CURRENT_LEVELS] = [r[PARTICIPANT_AT] for r in latest if r[DEPARTED_AT]]
        batch.rows[ALERTS] = list(pending.alerts.values())
        batch.rows[ROOM_ROLLUPS] = [r for k, r in pending.rollups.items() if k[0] == "room"]
        batch.rows[REGION_ROLLUPS] = [r for k, r in pending.rollups.items() if k[0] == "region"]

    def _collect_partition(
        self, topic: str, records: list[ConsumerRecord], pending: _Pending
    ) -> None:
        """One partition's records into the batch. Level events (nearly every record, so a
        tight loop): history keeps the first copy of an event; the latest state keeps a
        participant's newest event, the one the upsert would keep (not older by ``ts``; the
        later of equal ones), so a replayed older copy later in the poll does not hide it."""
        if topic != self.settings.topic_levels:
            for m in records:
                self._collect_other(m, pending)
            return
        bad = pending.bad
        history = pending.history
        latest = pending.current
        row_of = level_change_row_from_json
        event_id_at, ts_at, participant_at = EVENT_ID_AT, TS_AT, PARTICIPANT_AT
        for m in records:
            value = m.value
            if value is None:
                bad.append((m, "invalid_json", "empty value (a tombstone) on the levels topic"))
                continue
            try:
                row = row_of(value)
            except ContractError as exc:
                bad.append((m, exc.code, exc.message))
                continue
            ts = row[ts_at]
            history.setdefault((row[event_id_at], ts), row)
            sid = row[participant_at]
            seen = latest.get(sid)
            if seen is None or seen[ts_at] <= ts:
                latest[sid] = row

    def _collect_other(self, m: ConsumerRecord, pending: _Pending) -> None:
        """Alerts, rollups and dead letters (few records): decode into the batch."""
        _, alerts, rollups, deadletters = self.topics
        try:
            if m.topic == alerts:
                alert = decode_alert(m.value)
                pending.alerts[alert.alert_id] = alert_row(alert)
            elif m.topic == rollups:
                rollup = decode_rollup(m.value)
                pending.rollups[rollup.key] = rollup_row(rollup)
            elif m.topic == deadletters:
                letter = decode_deadletter(m.value)
                hour = ms_to_datetime(letter.timestamp - letter.timestamp % 3_600_000)
                pending.batch.dead_letters.append(
                    (m.partition, m.offset, hour, letter.source.topic, letter.error.code)
                )
        except ContractError as exc:
            if m.topic == deadletters:  # never dead-letter a dead letter: log it only
                log.error("undecodable dead letter at %s@%s: %s", m.partition, m.offset, exc)
                return
            pending.bad.append((m, exc.code, exc.message))
        except msgspec.DecodeError as exc:  # rollups have no contract module yet
            pending.bad.append((m, "invalid_field", str(exc)))

    async def _dead_letter(
        self, producer: AIOKafkaProducer, pending: _Pending, rejects: list[Reject]
    ) -> None:
        now = int(time.time() * 1000)
        futures = []
        for m, code, message in pending.bad:
            METRICS.dead_letters.labels(service="sink", code=code).inc()
            letter = dead_letter_for(m, code, message, now)
            futures.append(await producer.send(self.settings.topic_deadletter, encode(letter)))
        for reject in rejects:
            METRICS.dead_letters.labels(service="sink", code=reject.code).inc()
            letter = make_dead_letter(
                repr(reject.row).encode(),
                topic=reject.table,
                partition=-1,
                offset=-1,
                key=str(reject.row[0]).encode(),
                code=reject.code,
                message=reject.message,
                now_ms=now,
            )
            futures.append(await producer.send(self.settings.topic_deadletter, encode(letter)))
        if futures:
            await asyncio.gather(*futures)
        self.counts.dead_letters += len(futures)
        self.counts.rejected += len(rejects)

    def _ensure_writer(self) -> BatchWriter:
        if self._writer is None:
            assert self.settings.database_url
            self._conn = psycopg.connect(libpq_url(self.settings.database_url), autocommit=True)
            self._writer = BatchWriter(self._conn)
        return self._writer

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None
        self._writer = None


def tune_gc() -> None:
    """Make CPython's cyclic GC cheap for a process that holds one or two polls of records.

    Every record and row is an object the GC tracks; with the default thresholds a poll of
    20,000 events triggers hundreds of collections that also walk every long-lived object
    (aiokafka, psycopg, modules). Measured: decoding plus row building ran 2x faster with the
    startup objects frozen and young collections every 20,000 allocations. Even those took
    15-25 ms each (a young generation holds the batch's big dicts and lists): 1.2-1.8 us per
    event end to end, 16-17 collections per 200,000 events; every 100,000 allocations,
    0.2-0.4 us and one collection (2026-11-24). Nothing here makes cycles immortal; they are
    collected, less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 20, 10)


def run_on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop (as the worker runs): its socket reads and callbacks in C
    cut the sink's event-loop share (asyncio streams, selector) of the client CPU."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:  # pragma: no cover - uvloop is a dependency, but optional in spirit
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def run_sink(settings: Settings, loglevel: str | None = None) -> None:
    """Run the sink in this process until SIGTERM/SIGINT (embedded servers if unset)."""
    from pipelines.runtime.service import service, stop_on_signals  # noqa: PLC0415

    with service(settings, "sink", loglevel=loglevel, schema="current", metrics=True) as resolved:
        sink = PostgresSink(resolved)

        async def main() -> None:
            stop = stop_on_signals()
            reporter = asyncio.create_task(_report(sink, stop))
            tune_gc()
            try:
                await sink.run(stop)
            finally:
                reporter.cancel()
            log.info("sink stopped: %s", _summary(sink.counts))

        run_on_uvloop(main())


def _summary(c: SinkCounts) -> str:
    return (
        f"{c.batches} batches, rows {dict(c.rows)}, {c.rejected} rejected, "
        f"{c.dead_letters} dead letters, {c.retries} retries"
    )


async def _report(sink: PostgresSink, stop: asyncio.Event, every_s: float = 30.0) -> None:
    while not stop.is_set():
        await asyncio.sleep(every_s)
        log.info("sink: %s", _summary(sink.counts))
