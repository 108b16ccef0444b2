"""Postgres sink write path (``BatchWriter``) against a plain ``COPY`` of the same rows.

Run ``python benchmarks/sink.py [--rows 200000] [--seed 1] [--repeat 3]``: prints one JSON
document (progress goes to stderr). ``run()`` returns the same dict.

Steps, all against one Postgres (an embedded one started through ``Runtime`` in a temporary
state dir, unless ``DATABASE_URL`` is set) and a fresh database migrated to head, dropped at
the end:

1. level events: the engine (``Engine.feed_batch``) over scripted participants in a network
   mix gives a few thousand realistic events; they are replicated (new participant, room and
   event ids, shifted timestamps) until there are ``rows`` of them, spread over one UTC day
   that has its own daily partition of ``level_changes`` (as in production, not the DEFAULT
   partition), in time order as the worker emits them;
2. their ``level_change_row`` / ``current_level_row`` tuples (timed: "row building");
3. then ``repeat`` rounds, the tables truncated (and a ``CHECKPOINT``) before each
   measurement, each round measuring in turn:

   - ``sink``: ``BatchWriter.write`` of batches of 5,000 events, each batch holding their
     5,000 ``level_changes`` rows and the ``current_levels`` rows deduplicated by participant
     (last wins), exactly what ``PostgresSink._collect`` builds from a poll; one transaction
     per batch;
   - ``replay``: the same batches written again over the tables the sink run just filled:
     every history row conflicts, every current level is rewritten (same ``ts``);
   - ``sink_level_changes_only``: the same, with only the ``level_changes`` rows (isolates
     what ``current_levels`` costs);
   - ``copy`` (the baseline): one ``COPY level_changes (...) FROM STDIN`` of all the
     ``level_changes`` rows straight into the partitioned table, in one transaction: no
     staging table, no conflict handling, no per-batch commits.

Figures are wall-clock (Postgres does most of the work, in other processes), the median of
the rounds; rates are level events (= ``level_changes`` rows) per second, so compare the
ratio sink/copy across machines rather than raw rates.
"""

from __future__ import annotations

import argparse
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
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script from a checkout: make `pipelines` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url

from pipelines.config import Settings
from pipelines.contracts import LevelEvent
from pipelines.quality import Engine
from pipelines.runtime import Runtime, libpq_url, sqlalchemy_url
from pipelines.storage import migrate
from pipelines.storage.models import ensure_partitions, partition_name
from pipelines.storage.rows import (
    LEVEL_CHANGE_COLUMNS,
    current_level_row,
    level_change_row,
)
from pipelines.storage.writer import CURRENT_LEVELS, LEVEL_CHANGES, Batch, BatchWriter
from pipelines.testing import Conditions, ScriptedParticipant

BATCH_SIZE = 5_000
"""Events per batch: ``pipelines.storage.sink.MAX_BATCH``, the most one poll returns."""

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


@contextmanager
def fresh_database(progress: Callable[[str], None]) -> Iterator[tuple[str, str]]:
    """A fresh, migrated database (SQLAlchemy URL, where the server is) on DATABASE_URL or an
    embedded Postgres."""
    workdir = Path(tempfile.mkdtemp(prefix="nq-sinkbench-"))
    settings = Settings.from_env().with_overrides(state_dir=workdir / "state")
    runtime = Runtime(settings, kafka=False)
    try:
        began = time.monotonic()
        resolved = runtime.start()
        assert resolved.database_url
        where = "embedded" if runtime.postgres else "DATABASE_URL"
        progress(f"postgres ({where}) ready in {time.monotonic() - began:.1f}s")
        admin = libpq_url(resolved.database_url)
        name = f"nq_sinkbench_{uuid.uuid4().hex[:10]}"
        url = make_url(resolved.database_url).set(database=name).render_as_string(False)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            began = time.monotonic()
            migrate.upgrade(url)
            progress(f"database {name} migrated to head in {time.monotonic() - began:.1f}s")
            yield url, where
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
    json_at = LEVEL_CHANGE_COLUMNS.index("stats")
    copy_sql = sql.SQL("COPY level_changes ({}) FROM STDIN").format(
        sql.SQL(", ").join(map(sql.Identifier, LEVEL_CHANGE_COLUMNS))
    )
    cpu = time.process_time()
    began = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
        for row in history:
            copy.write_row((*row[:json_at], Jsonb(row[json_at]), *row[json_at + 1 :]))
    return time.perf_counter() - began, time.process_time() - cpu


# -- the benchmark -----------------------------------------------------------------------------


def run(rows: int = 200_000, seed: int = 1, repeat: int = 3, progress: bool = True) -> dict:
    """Generate, then measure sink, replay and plain COPY; returns the JSON-ready result."""
    if rows < 1 or repeat < 1:
        raise ValueError("rows and repeat must be >= 1")
    say = note if progress else (lambda _text: None)
    load_before = os.getloadavg()[0]
    began_all = time.monotonic()
    day = datetime.now(UTC).date()  # the migration creates this day's partition

    began = time.perf_counter()
    events = level_events(rows, seed, day)
    generate_s = time.perf_counter() - began
    participants = len({e.participant_sid for e in events})
    say(f"{len(events):,} level events of {participants:,} participants in {generate_s:.1f}s")
    # The sink holds one poll of objects, not a day of events: keep the cyclic GC from
    # traversing the benchmark's own data over and over while it times things.
    gc.collect()
    gc.freeze()
    try:
        return _measure(events, participants, generate_s, day, repeat, say) | {
            "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "elapsed_s": round(time.monotonic() - began_all, 1),
        }
    finally:
        gc.unfreeze()


def _measure(
    events: list[LevelEvent],
    participants: int,
    generate_s: float,
    day: date,
    repeat: int,
    say: Callable[[str], None],
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

    times: dict[str, list[float]] = {"sink": [], "replay": [], "lc_only": [], "copy": []}
    cpu: dict[str, list[float]] = {k: [] for k in times}

    def measure(path: str, seconds: tuple[float, float]) -> None:
        times[path].append(seconds[0])
        cpu[path].append(seconds[1])

    with fresh_database(say) as (url, where):
        ensure_day_partition(url, day)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            server = conn.execute("SHOW server_version").fetchone()
            version = str(server[0]) if server else "?"
            for r in range(1, repeat + 1):
                _reset(conn)
                measure("sink", write_batches(conn, full))
                if (_count(conn, "level_changes"), _count(conn, "current_levels")) != (
                    len(events),
                    participants,
                ):
                    raise AssertionError("the sink run did not write every row")
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
                )
            _reset(conn)
    if in_partition != len(events):
        raise AssertionError(f"only {in_partition} rows landed in {partition_name(day)}")

    rate = {k: len(events) / statistics.median(v) for k, v in times.items()}
    return {
        "benchmark": "netquality.sink",
        "rows": len(events),
        "batch_size": BATCH_SIZE,
        "batches": len(full),
        "current_levels_rows": current_rows,
        "participants": participants,
        "repeat": repeat,
        "sink_rows_per_s": round(rate["sink"]),
        "copy_rows_per_s": round(rate["copy"]),
        "ratio": round(rate["sink"] / rate["copy"], 3),
        "replay_rows_per_s": round(rate["replay"]),
        "sink_level_changes_only_rows_per_s": round(rate["lc_only"]),
        "row_building_rows_per_s": round(len(events) / build_s),
        "event_generation_s": round(generate_s, 2),
        "seconds": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "client_cpu_share": {
            k: round(statistics.median(c / w for c, w in zip(cpu[k], times[k], strict=True)), 3)
            for k in times
        },
        "postgres_version": version,
        "postgres": where,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    result = run(args.rows, args.seed, args.repeat, progress=not args.quiet)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
