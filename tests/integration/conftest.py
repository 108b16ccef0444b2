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
from pipelines.contracts import encode
from pipelines.runtime import libpq_url
from pipelines.runtime.process import ManagedProcess
from pipelines.storage import migrate
from pipelines.storage.sink import PostgresSink
from pipelines.streaming.bundles import bundled
from pipelines.streaming.levels import default_partition
from pipelines.streaming.topics import TopicSpec, ensure_topics


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

    def produce_to_room_stage(self, settings: Settings, topic: str, events: list) -> None:
        """Level events onto a room stage's internal topic, where the levels agent routes its
        own: created like the worker's, each event in its room's partition, in the given order;
        odd runs of ten as one bundle each (as the levels agent sends them), even runs as lone
        records keyed by room (as the stages read them before bundling)."""

        ensure_topics(settings, specs=[TopicSpec(topic, settings.partitions, 1)])
        for start in range(0, len(events), 10):
            run = events[start : start + 10]
            if start // 10 % 2:
                items = [(default_partition(e.room_sid.encode(), settings.partitions), encode(e))
                         for e in run]  # fmt: skip
                for _, partition, _, value in bundled(topic, items):
                    self.producer.send(topic, value=value, partition=partition)
            else:
                for e in run:
                    self.producer.send(topic, key=e.room_sid.encode(), value=encode(e))
        self.producer.flush(timeout=30)

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


# --- web (pipelines/web): the API and dashboards served by uvicorn in a thread -----------------


class WebServerThread:
    """``create_app(settings)`` served by a real uvicorn on a free loopback port."""

    def __init__(self, settings: Settings, *, ingest: bool = False) -> None:
        import socket

        import uvicorn

        from pipelines.web import create_app
        from pipelines.web.server import ingest_parts

        # ingest=True: also the HTTP ingest under /ingest, as `netquality web` mounts it.
        routes, services = ingest_parts(settings) if ingest else ([], [])
        self.app = create_app(settings, extra_routes=routes, services=services)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "the web server died while starting"
            assert time.monotonic() < deadline, "the web server did not start"
            time.sleep(0.05)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /readyz says Postgres and the broker (the live feed's consumer) are up."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if httpx.get(f"{self.url}/readyz", timeout=10).status_code == 200:
                return
            time.sleep(0.2)
        raise AssertionError("the web server never became ready")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the web server did not stop"


@pytest.fixture
def web_servers() -> Iterator[Callable[[Settings], WebServerThread]]:
    started: list[WebServerThread] = []

    def start(settings: Settings, *, ingest: bool = False) -> WebServerThread:
        server = WebServerThread(settings, ingest=ingest)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def seed_dashboard_rows(database_url: str, now_ms: int) -> None:
    """Rows as the sink writes them: two regions, three rooms, rollups, two alerts.

    eu-west: RM-A (PA1 at 5, PA2 at 2 limited by video send bandwidth), RM-B (PA3 at 4);
    us-east: RM-C (PA4 at 1). Per-minute rollups for the last 30 minutes, RM-A getting worse.
    One open alert on RM-A, one resolved alert on RM-B.
    """
    from datetime import UTC, datetime

    from psycopg.types.json import Jsonb

    def ts(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, UTC)

    bw_stats = {
        "audio": {"sendStats": {"bandwidth": {"level": 5}, "fractionLost": {"level": 5},
                                "latency": {"level": 5, "rtt": 0.05}}, "recvStats": None},
        "video": {"sendStats": {"bandwidth": {"level": 2, "actual": 300000, "available": 320000},
                                "fractionLost": {"level": 5, "fractionLost": 0.0},
                                "latency": {"level": 4, "rtt": 0.09}}, "recvStats": None},
    }
    participants = [
        # participant, room, region, level, audio_send, video_send, limited_by, stats, age_s
        ("PA1", "RM-A", "eu-west", 5, 5, 5, None, {}, 600),
        ("PA2", "RM-A", "eu-west", 2, 5, 2, "video.send.bandwidth", bw_stats, 120),
        ("PA3", "RM-B", "eu-west", 4, 4, None, "audio.send.latency", {}, 300),
        ("PA4", "RM-C", "us-east", 1, 1, None, "audio.send.fractionLost", {}, 60),
    ]
    with psycopg.connect(libpq_url(database_url)) as conn:
        for sid, room, region, level, a_send, v_send, limited, stats, age in participants:
            first_ms, last_ms = now_ms - 1_200_000, now_ms - age * 1000
            conn.execute(
                "INSERT INTO level_changes (event_id, ts, room_sid, participant_sid, region,"
                " level, previous_level, audio_send, video_send, limited_by, stats)"
                " VALUES (%s, %s, %s, %s, %s, 5, NULL, 5, %s, NULL, '{}'::jsonb)",
                (f"{sid}:1", ts(first_ms), room, sid, region, 5 if v_send else None),
            )
            if level != 5:
                conn.execute(
                    "INSERT INTO level_changes (event_id, ts, room_sid, participant_sid, region,"
                    " level, previous_level, audio_send, video_send, limited_by, stats)"
                    " VALUES (%s, %s, %s, %s, %s, %s, 5, %s, %s, %s, %s)",
                    (f"{sid}:2", ts(last_ms), room, sid, region, level, a_send, v_send, limited,
                     Jsonb(stats)),
                )
            event_id, at = (f"{sid}:2", last_ms) if level != 5 else (f"{sid}:1", first_ms)
            conn.execute(
                "INSERT INTO current_levels (participant_sid, room_sid, region, ts, level,"
                " audio_send, video_send, limited_by, event_id)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (sid, room, region, ts(at), level, a_send, v_send, limited, event_id),
            )
        minute0 = now_ms - now_ms % 60_000
        for i in range(30):
            minute = ts(minute0 - (30 - i) * 60_000)
            bad = i * 2.0  # RM-A degrades over the half hour
            for room, region, seconds in (
                ("RM-A", "eu-west", [0, 0, bad, 0, 0, 120 - bad]),
                ("RM-B", "eu-west", [0, 0, 0, 10, 50, 0]),
                ("RM-C", "us-east", [0, 60, 0, 0, 0, 0]),
            ):
                total = sum(seconds)
                avg = sum(n * s for n, s in enumerate(seconds)) / total
                conn.execute(
                    "INSERT INTO room_rollups (room_sid, minute, region, seconds_at_level_0,"
                    " seconds_at_level_1, seconds_at_level_2, seconds_at_level_3,"
                    " seconds_at_level_4, seconds_at_level_5, participants_seen, min_level,"
                    " avg_level, changes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                    " %s, %s)",
                    (room, minute, region, *seconds, 2 if room == "RM-A" else 1,
                     min(n for n, s in enumerate(seconds) if s), avg, 1),
                )
            for region, seconds in (
                ("eu-west", [0, 0, bad, 10, 50, 120 - bad]),
                ("us-east", [0, 60, 0, 0, 0, 0]),
            ):
                total = sum(seconds)
                avg = sum(n * s for n, s in enumerate(seconds)) / total
                conn.execute(
                    "INSERT INTO region_rollups (region, minute, seconds_at_level_0,"
                    " seconds_at_level_1, seconds_at_level_2, seconds_at_level_3,"
                    " seconds_at_level_4, seconds_at_level_5, participants_seen, min_level,"
                    " avg_level, changes) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                    " %s)",
                    (region, minute, *seconds, 3, min(n for n, s in enumerate(seconds) if s),
                     avg, 2),
                )
        for alert_id, room, status, resolved in (
            ("room_degraded:RM-A:1", "RM-A", "opened", None),
            ("room_degraded:RM-B:1", "RM-B", "resolved", ts(now_ms - 600_000)),
        ):
            payload = {"message": f"{room}: 1 of 2 participants at level <= 2",
                       "worst": [{"participantSid": "PA2", "level": 2,
                                  "limitedBy": "video.send.bandwidth"}]}
            conn.execute(
                "INSERT INTO alerts (alert_id, kind, status, region, room_sid, opened_at,"
                " updated_at, resolved_at, participants, degraded, share, payload)"
                " VALUES (%s, 'room_degraded', %s, 'eu-west', %s, %s, %s, %s, 2, 1, 0.5, %s)",
                (alert_id, status, room, ts(now_ms - 900_000), ts(now_ms - 60_000), resolved,
                 Jsonb(payload)),
            )


@pytest.fixture(scope="session")
def web_kit() -> Any:
    """The web server class and the seeding function, for module-scoped fixtures."""
    from types import SimpleNamespace

    return SimpleNamespace(server=WebServerThread, seed=seed_dashboard_rows)
