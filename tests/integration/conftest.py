"""Fixtures for tests that run netquality's own processes against the real broker."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from psycopg import sql
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from pipelines.config import Settings
from pipelines.runtime import libpq_url
from pipelines.runtime.process import ManagedProcess
from pipelines.storage import migrate
from pipelines.storage.sink import PostgresSink
from pipelines.streaming.topics import ensure_topics


class KafkaIO:
    """Plain kafka-python produce/read helpers (no consumer groups: nothing to rebalance)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)

    def produce(
        self,
        topic: str,
        records: list[tuple[bytes | None, bytes]],
        timestamps: list[int] | None = None,
    ) -> None:
        """Send and flush; ``timestamps`` (ms) set each record's CreateTime (produce time)."""
        for i, (key, value) in enumerate(records):
            ts = None if timestamps is None else timestamps[i]
            self.producer.send(topic, key=key, value=value, timestamp_ms=ts)
        self.producer.flush(timeout=30)

    def read(self, topic: str, *, until: Callable[[list], bool], timeout: float = 60.0) -> list:
        """All records of ``topic`` from the start, polling until ``until(records)`` or timeout."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, consumer_timeout_ms=500
        )
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            records: list = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=300).values():
                    records.extend(batch)
                if until(records):
                    break
            return records
        finally:
            consumer.close()

    def close(self) -> None:
        self.producer.close(timeout=5)


@pytest.fixture
def kafka_io(broker: str) -> Iterator[KafkaIO]:
    io = KafkaIO(broker)
    yield io
    io.close()


@pytest.fixture
def worker_settings(broker: str, unique_id: str, tmp_path: Path) -> Settings:
    """Settings with fresh topics and a fresh app id (so a fresh consumer group) per test."""
    suffix = unique_id[-10:]
    settings = Settings.from_env().with_overrides(
        kafka_bootstrap_servers=broker,
        state_dir=tmp_path / "state",
        app_id=f"nq-{suffix}",
        partitions=4,
        topic_stats=f"stats-{suffix}",
        topic_levels=f"levels-{suffix}",
        topic_levels_current=f"current-{suffix}",
        topic_rollups=f"rollups-{suffix}",
        topic_alerts=f"alerts-{suffix}",
        topic_deadletter=f"deadletter-{suffix}",
    )
    ensure_topics(settings)
    return settings


@pytest.fixture
def no_staleness(tmp_path: Path) -> Path:
    """A thresholds file under which silence only counts after an hour: for tests about
    something else, so that a slow CI machine cannot turn waiting into participant silence."""
    path = tmp_path / "thresholds-no-staleness.json"
    path.write_text('{"stale_after_s": 3600}')
    return path


WorkerFactory = Callable[[Settings], ManagedProcess]


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start ``netquality worker`` processes; all are stopped gracefully at teardown."""
    started: list[ManagedProcess] = []

    def start(settings: Settings) -> ManagedProcess:
        env = {**os.environ, **settings.as_env()}
        proc = ManagedProcess(
            f"worker-{len(started)}",
            [sys.executable, "-m", "pipelines.cli", "worker"],
            log_path=tmp_path / f"worker-{len(started)}.log",
            env=env,
        )
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop(timeout=30)


class Database:
    """A throwaway database on the session's Postgres."""

    def __init__(self, server_url: str) -> None:
        self.name = f"nq_mig_{uuid.uuid4().hex[:12]}"
        self.admin_dsn = libpq_url(server_url)
        self.url = make_url(server_url).set(database=self.name).render_as_string(False)
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))
        self.engine: Engine = create_engine(self.url)

    def drop(self) -> None:
        self.engine.dispose()
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.name)
                )
            )

    def relations(self) -> set[str]:
        """Tables (plain and partitioned) in the database's schema."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT relname FROM pg_class"
                    " WHERE relnamespace = current_schema()::regnamespace"
                    " AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
                )
            )
            return {row[0] for row in rows}


@pytest.fixture
def make_db(postgres: Any) -> Iterator[Any]:
    """Factory of fresh databases, all dropped at teardown."""
    created: list[Database] = []

    def make() -> Database:
        db = Database(postgres.url)
        created.append(db)
        return db

    yield make
    for db in created:
        db.drop()


@pytest.fixture
def db(make_db: Any) -> Database:
    return make_db()


@pytest.fixture
def migrated(db: Database) -> Database:
    migrate.upgrade(db.url)
    return db


class SinkThread:
    """A PostgresSink running in its own thread and event loop, stoppable from the test."""

    def __init__(self, settings: Any) -> None:
        self.sink = PostgresSink(settings)
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        async def main() -> None:
            self.stop_event = asyncio.Event()
            await self.sink.run(self.stop_event)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # surfaced by stop()
            self.error = exc

    def stop(self) -> None:
        while self.stop_event is None and self.thread.is_alive():
            time.sleep(0.05)
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "sink did not stop"
        if self.error:
            raise self.error


@pytest.fixture
def sink_settings(worker_settings, migrated, unique_id):
    return worker_settings.with_overrides(
        database_url=migrated.url, sink_group=f"sink-{unique_id[-10:]}"
    )


@pytest.fixture
def sinks():
    started: list[SinkThread] = []

    def start(settings) -> SinkThread:
        sink = SinkThread(settings)
        started.append(sink)
        return sink

    yield start
    for sink in started:
        if sink.thread.is_alive():
            sink.stop()


def query(url: str, statement: str) -> list[tuple]:
    """Rows of one SQL statement (tests only: no parameters)."""
    with psycopg.connect(libpq_url(url)) as conn:
        return conn.execute(statement).fetchall()


def wait_for(predicate, timeout: float = 90.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def count(url: str, table: str) -> int:
    return query(url, f"SELECT count(*) FROM {table}")[0][0]



@pytest.fixture
def db_query():
    return query


@pytest.fixture
def wait_until():
    return wait_for


@pytest.fixture
def row_count():
    return count
