"""The Postgres sink end to end (Kafka -> Postgres committed) against a plain ``COPY``.

Run ``python benchmarks/sink.py [--rows 200000] [--seed 1] [--repeat 3] [--partitions 4]
[--writer-only] [--quiet]``: prints one JSON document (progress goes to stderr). ``run()``
takes the same as keyword arguments and returns the same dict (``netquality bench`` calls it).

Against one Postgres and one broker (embedded, started through ``Runtime`` in a temporary
state dir, unless ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` are set), a fresh database
migrated to head (dropped at the end) and fresh topics:

1. level events: the engine (``Engine.feed_batch``) over scripted participants in a network
   mix gives a few thousand realistic events; they are replicated (new participant, room and
   event ids, shifted timestamps) until there are ``rows`` of them, spread over one UTC day
   that has its own daily partition of ``level_changes``, in time order as the worker emits
   them; each is produced to the levels topic (the worker also sends it to the current-levels
   topic, which the sink does not read);
2. then ``repeat`` rounds, the tables truncated (and a ``CHECKPOINT``) before each path:

   - ``end_to_end``: a ``PostgresSink`` with a fresh group, from its first poll with records
     to the commit of the last offset (the headline ``sink_rows_per_s``);
   - ``writer``: ``BatchWriter.write`` alone over batches as ``_collect`` builds them;
   - ``replay``: the same batches again over the filled tables;
   - ``lc_only``: ``writer`` with the ``level_changes`` rows only;
   - ``copy`` (the baseline): one ``COPY level_changes (...) FROM STDIN`` of all the history
     rows straight into the partitioned table, one transaction.

Rates are wall-clock level events (= ``level_changes`` rows) per second, medians of the
rounds; CPU microseconds per row of the client, Postgres and the broker come with the
end-to-end figure, since wall rates on a shared machine move with its load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script from a checkout: make `pipelines` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec
import psutil
import psycopg
from aiokafka import AIOKafkaProducer
from psycopg import sql
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url

from pipelines.config import Settings
from pipelines.contracts import LevelEvent, encode
from pipelines.quality import Engine
from pipelines.runtime import Runtime, libpq_url, sqlalchemy_url
from pipelines.storage import migrate
from pipelines.storage.models import ensure_partitions, partition_name
from pipelines.storage.rows import (
    LEVEL_CHANGE_COLUMNS,
    current_level_row,
    level_change_row,
)
from pipelines.storage.sink import MAX_BATCH, PostgresSink, run_on_uvloop, tune_gc
from pipelines.storage.writer import CURRENT_LEVELS, LEVEL_CHANGES, Batch, BatchWriter
from pipelines.streaming.levels import default_partition
from pipelines.streaming.topics import ensure_topics
from pipelines.testing import Conditions, ScriptedParticipant

BATCH_SIZE = MAX_BATCH
"""Events per batch of the write-path measurements: the most one poll of the sink returns."""

BASE_PARTICIPANTS = 1_000
BASE_STEPS = 60
"""The engine runs over this many participants x seconds; the events are then replicated."""

DAY_MS = 86_400_000

Row = tuple[Any, ...]


def note(text: str) -> None:
    print(f"[sink] {text}", file=sys.stderr, flush=True)


# -- level events ------------------------------------------------------------------------------


def _participant(i: int, rnd: random.Random) -> ScriptedParticipant:
    """75 % audio+video publishers, 20 % audio-only, 5 % subscribe-only viewers."""
    kind = rnd.random()
    return ScriptedParticipant(
        f"PA{i:05d}",
        room_sid=f"RM{i // 8:04d}",
        region=("us1", "eu1", "ap1")[i % 3],
        publish_audio=kind < 0.95,
        publish_video=kind < 0.75,
        subscribe_audio=rnd.randint(1, 5),
        subscribe_video=rnd.randint(0, 4) if kind < 0.75 or kind >= 0.95 else 0,
    )


def base_events(seed: int) -> list[LevelEvent]:
    """Engine events of participants whose networks change now and then."""
    rnd = random.Random(seed)
    people = [_participant(i, rnd) for i in range(BASE_PARTICIPANTS)]
    current = [Conditions() for _ in people]
    samples = []
    for _ in range(BASE_STEPS):
        for i, p in enumerate(people):
            if rnd.random() < 0.15:  # a new network for this participant
                current[i] = Conditions(
                    uplink=rnd.choice([300e3, 800e3, 1.5e6, 3e6, 5e6, 20e6]),
                    downlink=rnd.choice([1e6, 3e6, 10e6, 50e6]),
                    loss=rnd.choice([0.0, 0.0, 0.0, 0.01, 0.03, 0.06, 0.12]),
                    rtt=rnd.uniform(0.02, 0.4),
                    jitter=rnd.uniform(0.001, 0.05),
                )
            samples.append(p.step(current[i]))
    return Engine().feed_batch(samples)


def level_events(rows: int, seed: int, day: date) -> list[LevelEvent]:
    """``rows`` events: the base events replicated with new ids, spread over ``day`` (UTC)."""
    base = base_events(seed)
    if not base:
        raise RuntimeError("the engine produced no events")
    t0 = min(e.timestamp for e in base)
    span = max(e.timestamp for e in base) - t0 + 1
    replicas = -(-rows // len(base))
    stride = (DAY_MS - span) // replicas
    if stride < span:
        raise ValueError(f"{rows} rows do not fit in one day with this base ({span} ms)")
    day_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    replace = msgspec.structs.replace
    out: list[LevelEvent] = []
    for k in range(replicas):
        shift = day_ms + k * stride - t0
        for e in base:
            sid = f"{e.participant_sid}-{k:04d}"
            out.append(
                replace(
                    e,
                    event_id=sid + e.event_id[len(e.participant_sid) :],
                    participant_sid=sid,
                    room_sid=f"{e.room_sid}-{k:04d}",
                    timestamp=e.timestamp + shift,
                )
            )
            if len(out) == rows:
                break
    out.sort(key=lambda e: e.timestamp)
    return out


def batches(events: list[LevelEvent], history: list[Row], current: list[Row], *,
            with_current: bool = True) -> list[Batch]:  # fmt: skip
    """What the sink builds per poll: history rows, current levels deduplicated (last wins)."""
    out = []
    for lo in range(0, len(events), BATCH_SIZE):
        batch = Batch()
        batch.rows[LEVEL_CHANGES] = history[lo : lo + BATCH_SIZE]
        if with_current:
            latest: dict[str, Row] = {}
            for e, row in zip(events[lo : lo + BATCH_SIZE], current[lo : lo + BATCH_SIZE],
                              strict=True):  # fmt: skip
                latest[e.participant_sid] = row
            batch.rows[CURRENT_LEVELS] = list(latest.values())
        out.append(batch)
    return out


# -- database ----------------------------------------------------------------------------------


@dataclass
class Servers:
    """Where the benchmark writes: a fresh migrated database, and a broker if asked for."""

    url: str
    where: str
    bootstrap: str | None
    postgres_pid: int | None
    broker_pid: int | None


@contextmanager
def servers(progress: Callable[[str], None], kafka: bool) -> Iterator[Servers]:
    """A fresh, migrated database on DATABASE_URL or an embedded Postgres; with ``kafka``
    also a broker (KAFKA_BOOTSTRAP_SERVERS or an embedded Tansu)."""
    workdir = Path(tempfile.mkdtemp(prefix="nq-sinkbench-"))
    settings = Settings.from_env().with_overrides(state_dir=workdir / "state")
    runtime = Runtime(settings, kafka=kafka)
    try:
        began = time.monotonic()
        resolved = runtime.start()
        assert resolved.database_url
        where = "embedded" if runtime.postgres else "DATABASE_URL"
        if kafka:
            where += ", broker " + ("embedded Tansu" if runtime.broker else "KAFKA_BOOTSTRAP")
        progress(f"servers ({where}) ready in {time.monotonic() - began:.1f}s")
        admin = libpq_url(resolved.database_url)
        name = f"nq_sinkbench_{uuid.uuid4().hex[:10]}"
        url = make_url(resolved.database_url).set(database=name).render_as_string(False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            began = time.monotonic()
            migrate.upgrade(url)
            progress(f"database {name} migrated to head in {time.monotonic() - began:.1f}s")
            yield Servers(
                url,
                where,
                resolved.kafka_bootstrap_servers if kafka else None,
                runtime.postgres.pid if runtime.postgres else None,
                runtime.broker.pid if kafka and runtime.broker else None,
            )
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    finally:
        runtime.close()
        shutil.rmtree(workdir, ignore_errors=True)


def ensure_day_partition(url: str, day: date) -> None:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            ensure_partitions(connection, day, 1)
    finally:
        engine.dispose()


def _reset(conn: psycopg.Connection[Any]) -> None:
    conn.execute("TRUNCATE level_changes, current_levels")
    conn.execute("CHECKPOINT")


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
    return int(row.fetchone()[0])  # type: ignore[index]


def write_batches(conn: psycopg.Connection[Any], prepared: list[Batch]) -> tuple[float, float]:
    """Wall and client CPU seconds to write the batches through a fresh ``BatchWriter``."""
    writer = BatchWriter(conn)
    cpu = time.process_time()
    began = time.perf_counter()
    for batch in prepared:
        rejects = writer.write(batch)
        if rejects:
            raise AssertionError(f"{len(rejects)} rows rejected, first: {rejects[0]}")
    return time.perf_counter() - began, time.process_time() - cpu


def plain_copy(conn: psycopg.Connection[Any], history: list[Row]) -> tuple[float, float]:
    """Wall and client CPU seconds for one COPY of the history rows, one transaction."""
    copy_sql = sql.SQL("COPY level_changes ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, LEVEL_CHANGE_COLUMNS))
    )
    cpu = time.process_time()
    began = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for row in history:
            copy.write_row(row)
    return time.perf_counter() - began, time.process_time() - cpu


# -- end to end: Kafka -> PostgresSink -> Postgres ---------------------------------------------


PRODUCE_BATCH_BYTES = 512 * 1024


async def prefill(bootstrap: str, topic: str, events: list[LevelEvent], partitions: int) -> None:
    """Produce the encoded events keyed by participant, as the worker does, partition by
    partition in big batches."""
    by_partition: list[list[tuple[bytes, bytes]]] = [[] for _ in range(partitions)]
    for e in events:
        key = e.participant_sid.encode()
        by_partition[default_partition(key, partitions)].append((key, encode(e)))
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=PRODUCE_BATCH_BYTES,
        max_request_size=4 * PRODUCE_BATCH_BYTES, request_timeout_ms=60_000,
    )  # fmt: skip
    await producer.start()

    async def one_partition(partition: int, items: list[tuple[bytes, bytes]]) -> None:
        futures = []
        batch = producer.create_batch()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)
        futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)

    try:
        await asyncio.gather(*(one_partition(p, items) for p, items in enumerate(by_partition)))
    finally:
        await producer.stop()


def _tree_cpu(pid: int | None) -> float:
    """CPU seconds of a server process and its children, exited ones included (a Postgres
    backend exits with its connection; the postmaster reaps it)."""
    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        total = sum(root.cpu_times()[:4])
        for child in root.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += sum(child.cpu_times()[:2])
        return total
    except psutil.Error:
        return 0.0


async def sink_end_to_end(
    settings: Settings, servers: Servers, records: int, timeout_s: float
) -> dict[str, float]:
    """One ``PostgresSink`` (fresh group) from the start of the pre-filled topics until every
    record's offset is committed: seconds from its first poll with records to its last commit,
    and the CPU seconds of this process, Postgres and the broker over that window."""
    sink = PostgresSink(settings.with_overrides(sink_group=f"sinkbench-{uuid.uuid4().hex[:10]}"))
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    deadline = time.monotonic() + timeout_s
    cpu_at_start: tuple[float, float, float] | None = None
    try:
        while sink.counts.records < records:
            if task.done():
                task.result()
                raise AssertionError("the sink stopped before committing every record")
            if time.monotonic() > deadline:
                raise AssertionError(f"{sink.counts.records}/{records} committed in {timeout_s}s")
            if cpu_at_start is None and sink.counts.first_records_s is not None:
                cpu_at_start = (
                    time.process_time(),
                    _tree_cpu(servers.postgres_pid),
                    _tree_cpu(servers.broker_pid),
                )
            await asyncio.sleep(0.01)
        cpu_at_end = (
            time.process_time(), _tree_cpu(servers.postgres_pid), _tree_cpu(servers.broker_pid)
        )  # fmt: skip
    finally:
        stop.set()
        await asyncio.wait_for(task, 120)
    assert sink.counts.first_records_s is not None and sink.counts.last_commit_s is not None
    assert cpu_at_start is not None
    seconds = sink.counts.last_commit_s - sink.counts.first_records_s
    client, postgres, broker = (b - a for a, b in zip(cpu_at_start, cpu_at_end, strict=True))
    return {
        "seconds": seconds,
        "client_cpu_s": client,
        "postgres_cpu_s": postgres,
        "broker_cpu_s": broker,
        "batches": sink.counts.batches,
    }


# -- the benchmark -----------------------------------------------------------------------------


def run(
    rows: int = 200_000,
    seed: int = 1,
    repeat: int = 3,
    progress: bool = True,
    end_to_end: bool = True,
    partitions: int = 4,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Generate, then measure the sink end to end (Kafka -> Postgres committed, unless
    ``end_to_end`` is false), its write path alone, a replay and a plain COPY, ``repeat``
    rounds each; returns the JSON-ready result (see benchmarks/README.md)."""
    if rows < 1 or repeat < 1:
        raise ValueError("rows and repeat must be >= 1")
    say = note if progress else (lambda _text: None)
    load_before = os.getloadavg()
    began_all = time.monotonic()
    day = datetime.now(UTC).date()  # the migration creates this day's partition

    began = time.perf_counter()
    events = level_events(rows, seed, day)
    generate_s = time.perf_counter() - began
    participants = len({e.participant_sid for e in events})
    say(f"{len(events):,} level events of {participants:,} participants in {generate_s:.1f}s")
    # The sink holds one poll of objects, not a day of events: keep the cyclic GC from
    # traversing the benchmark's own data over and over while it times things, and tune it
    # as `netquality sink` does (tune_gc).
    thresholds = gc.get_threshold()
    tune_gc()
    try:
        measured = _measure(
            events, participants, day, repeat, say,
            partitions=partitions if end_to_end else 0, timeout_s=timeout_s,
        )  # fmt: skip
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
    return measured | {
        "event_generation_s": round(generate_s, 2),
        "load_average": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "elapsed_s": round(time.monotonic() - began_all, 1),
    }


def _measure(
    events: list[LevelEvent],
    participants: int,
    day: date,
    repeat: int,
    say: Callable[[str], None],
    *,
    partitions: int,
    timeout_s: float,
) -> dict[str, Any]:
    began = time.perf_counter()
    history = [level_change_row(e) for e in events]
    current = [current_level_row(e) for e in events]
    build_s = time.perf_counter() - began
    say(f"rows built in {build_s:.2f}s ({len(events) / build_s:,.0f} events/s)")

    full = batches(events, history, current)
    history_only = batches(events, history, current, with_current=False)
    current_rows = sum(len(b.rows[CURRENT_LEVELS]) for b in full)
    gc.collect()
    gc.freeze()

    paths = ("end_to_end", "writer", "replay", "lc_only", "copy")
    times: dict[str, list[float]] = {k: [] for k in paths if partitions or k != "end_to_end"}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    e2e: list[dict[str, float]] = []

    def measure(path: str, seconds: tuple[float, float]) -> None:
        times[path].append(seconds[0])
        cpu[path].append(seconds[1])

    with servers(say, kafka=bool(partitions)) as where:
        url = where.url
        ensure_day_partition(url, day)
        settings = None
        if partitions:
            settings = _topics(where, partitions)
            began = time.monotonic()
            asyncio.run(prefill(where.bootstrap or "", settings.topic_levels, events, partitions))
            say(f"{len(events):,} records produced in {time.monotonic() - began:.1f}s")
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            server = conn.execute("SHOW server_version").fetchone()
            version = str(server[0]) if server else "?"
            for r in range(1, repeat + 1):
                if settings is not None:
                    _reset(conn)
                    got = run_on_uvloop(  # the event loop `netquality sink` runs on
                        sink_end_to_end(settings, where, len(events), timeout_s)
                    )
                    e2e.append(got)
                    measure("end_to_end", (got["seconds"], got["client_cpu_s"]))
                    _check_all_written(conn, len(events), participants)
                _reset(conn)
                measure("writer", write_batches(conn, full))
                _check_all_written(conn, len(events), participants)
                in_partition = _count(conn, partition_name(day))
                measure("replay", write_batches(conn, full))
                if _count(conn, "level_changes") != len(events):
                    raise AssertionError("the replay changed the number of history rows")
                _reset(conn)
                measure("lc_only", write_batches(conn, history_only))
                _reset(conn)
                measure("copy", plain_copy(conn, history))
                if _count(conn, "level_changes") != len(events):
                    raise AssertionError("the COPY did not write every row")
                say(
                    f"round {r}/{repeat}: "
                    + ", ".join(f"{k} {len(events) / v[-1]:,.0f} rows/s" for k, v in times.items())
                    + f" (load {os.getloadavg()[0]:.2f})"
                )
            _reset(conn)
    if in_partition != len(events):
        raise AssertionError(f"only {in_partition} rows landed in {partition_name(day)}")

    rate = {k: len(events) / statistics.median(v) for k, v in times.items()}
    headline = "end_to_end" if partitions else "writer"
    result: dict[str, Any] = {
        "benchmark": "netquality.sink",
        "sink_measured": headline,
        "rows": len(events),
        "participants": participants,
        "current_levels_rows_per_pass": current_rows,
        "batch_size": BATCH_SIZE,
        "repeat": repeat,
        "sink_rows_per_s": round(rate[headline]),
        "copy_rows_per_s": round(rate["copy"]),
        "ratio": round(rate[headline] / rate["copy"], 3),
        "writer_rows_per_s": round(rate["writer"]),
        "replay_rows_per_s": round(rate["replay"]),
        "writer_level_changes_only_rows_per_s": round(rate["lc_only"]),
        "row_building_rows_per_s": round(len(events) / build_s),
        "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "client_cpu_share": {
            k: round(statistics.median(c / w for c, w in zip(cpu[k], times[k], strict=True)), 3)
            for k in times
        },
    }
    if e2e:
        result["end_to_end"] = {
            "partitions": partitions,
            "records": len(events),
            "batches": [int(x["batches"]) for x in e2e],
            **{
                f"{k}_per_row_us": round(
                    statistics.median(x[f"{k}_cpu_s"] for x in e2e) / len(events) * 1e6, 2
                )
                for k in ("client", "postgres", "broker")
            },
        }
    return result | {
        "postgres_version": version,
        "servers": where.where,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def _topics(where: Servers, partitions: int) -> Settings:
    """Sink settings on fresh topics (created here) of the benchmark's servers."""
    suffix = uuid.uuid4().hex[:10]
    settings = Settings.from_env().with_overrides(
        kafka_bootstrap_servers=where.bootstrap,
        database_url=where.url,
        partitions=partitions,
        topic_levels=f"sinkbench-levels-{suffix}",
        topic_levels_current=f"sinkbench-current-{suffix}",
        topic_rollups=f"sinkbench-rollups-{suffix}",
        topic_alerts=f"sinkbench-alerts-{suffix}",
        topic_deadletter=f"sinkbench-deadletter-{suffix}",
    )
    ensure_topics(settings)
    return settings


def _check_all_written(conn: psycopg.Connection[Any], rows: int, participants: int) -> None:
    got = (_count(conn, "level_changes"), _count(conn, "current_levels"))
    if got != (rows, participants):
        raise AssertionError(f"expected {rows} history rows, {participants} current: got {got}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4, help="of the pre-filled topics")
    parser.add_argument(
        "--writer-only", action="store_true", help="no broker: measure the write path only"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    result = run(
        rows=args.rows, seed=args.seed, repeat=args.repeat, progress=not args.quiet,
        end_to_end=not args.writer_only, partitions=args.partitions,
    )  # fmt: skip
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
