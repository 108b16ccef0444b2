"""The embedded runtime against the real servers: broker round trip, topics, Postgres, cleanup."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import psycopg
import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from pipelines.config import Settings
from pipelines.runtime import Runtime, libpq_url
from pipelines.runtime.broker import metadata_ok
from pipelines.streaming.topics import TopicSpec, describe_partitions, ensure_topics

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


async def _roundtrip(bootstrap: str, topic: str, group: str, values: list[bytes]) -> list[bytes]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"PA01")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        rebalance_timeout_ms=3000,  # Tansu completes a join only after this
        session_timeout_ms=10000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < len(values):
                batch = await consumer.getmany(timeout_ms=500)
                got.extend(m.value for msgs in batch.values() for m in msgs if m.value is not None)
        await consumer.commit()
    finally:
        await consumer.stop()  # leave the group politely; a vanished member stalls Tansu ~30 s
    return got


def test_broker_produce_then_consume(broker: str, unique_id: str) -> None:
    assert metadata_ok(broker)
    topic = f"{unique_id}.roundtrip"
    ensure_topics(Settings(), bootstrap_servers=broker, specs=[TopicSpec(topic, 1, 1)])
    values = [json.dumps({"seq": i}).encode() for i in range(3)]

    got = asyncio.run(_roundtrip(broker, topic, f"{unique_id}-group", values))

    assert got == values


def test_topic_creation_is_idempotent(broker: str, unique_id: str) -> None:
    defaults = Settings()
    settings = Settings(
        kafka_bootstrap_servers=broker,
        partitions=3,
        topic_stats=f"{unique_id}.{defaults.topic_stats}",
        topic_levels=f"{unique_id}.{defaults.topic_levels}",
        topic_levels_current=f"{unique_id}.{defaults.topic_levels_current}",
        topic_rollups=f"{unique_id}.{defaults.topic_rollups}",
        topic_alerts=f"{unique_id}.{defaults.topic_alerts}",
        topic_deadletter=f"{unique_id}.{defaults.topic_deadletter}",
    )
    names = [
        settings.topic_stats, settings.topic_levels, settings.topic_levels_current,
        settings.topic_rollups, settings.topic_alerts, settings.topic_deadletter,
    ]

    first = ensure_topics(settings)
    second = ensure_topics(settings)

    assert sorted(first.created) == sorted(names)
    assert first.existing == []
    assert second.created == []
    assert sorted(second.existing) == sorted(names)
    assert describe_partitions(broker, names) == dict.fromkeys(names, 3)

    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, settings.topic_levels_current),
            ConfigResource(ConfigResourceType.TOPIC, settings.topic_levels),
        ]
        configs = admin.describe_configs(resources, config_filter="all")["topic"]
    finally:
        admin.close()
    if settings.topic_levels_current not in first.configs_dropped:
        current = configs[settings.topic_levels_current]
        assert current["cleanup.policy"]["value"] == "compact"
    assert configs[settings.topic_levels]["cleanup.policy"]["value"] == "delete"


def test_postgres_answers_and_keeps_data_across_restart(
    postgres, unique_id: str
) -> None:
    table = "runtime_" + unique_id.replace("-", "_").lower()
    engine = sa.create_engine(postgres.url)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
            conn.execute(sa.text(f"create table {table} (id int primary key, note text)"))
            conn.execute(sa.text(f"insert into {table} values (1, 'kept')"))
        engine.dispose()

        postgres.stop()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(libpq_url(postgres.url), connect_timeout=2).close()
        postgres.start()

        with engine.begin() as conn:
            assert conn.execute(sa.text(f"select note from {table} where id = 1")).scalar_one() \
                == "kept"
            conn.execute(sa.text(f"drop table {table}"))
    finally:
        engine.dispose()


def _descendants() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_runtime_starts_both_and_leaves_no_children(tmp_path: Path) -> None:
    before = _descendants()
    # Endpoints unset on purpose: this test is about the embedded processes.
    settings = Settings(state_dir=tmp_path / "state")

    with Runtime(settings) as rt:
        assert rt.broker is not None
        assert rt.postgres is not None
        assert rt.settings.kafka_bootstrap_servers == rt.broker.bootstrap_servers
        assert rt.settings.database_url == rt.postgres.url
        assert rt.settings.database_url.startswith("postgresql+psycopg://")
        assert metadata_ok(rt.settings.kafka_bootstrap_servers)
        with psycopg.connect(libpq_url(rt.settings.database_url)) as conn:
            assert conn.execute("select current_database()").fetchone() == ("netquality",)
        started = _descendants() - before
        assert rt.broker.pid in started
        assert rt.postgres.pid in started

    assert _descendants() - before == set()
    assert all(_gone(pid) for pid in started)


_ORPHAN_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from pipelines.runtime import EmbeddedBroker, EmbeddedPostgres
    base = Path(sys.argv[1])
    broker = EmbeddedBroker(base / "logs"); broker.start()
    pg = EmbeddedPostgres(base / "pg", base / "logs"); pg.start()
    print(json.dumps({"broker": broker.pid, "postgres": pg.pid}), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no cleanup: only the kernel can help
    """
)


def test_servers_die_when_their_python_process_is_killed(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _ORPHAN_SCRIPT, str(tmp_path)],
        check=False, capture_output=True, text=True, timeout=120, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    pids = json.loads(proc.stdout.strip().splitlines()[-1])

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(_gone(p) for p in pids.values()):
        time.sleep(0.1)

    assert {name: _gone(pid) for name, pid in pids.items()} == {
        "broker": True, "postgres": True,
    }


def test_runtime_uses_configured_endpoints_without_starting_anything(tmp_path: Path) -> None:
    before = _descendants()
    settings = Settings(
        kafka_bootstrap_servers="kafka-1:9092,kafka-2:9092",
        database_url="postgresql://nq:secret@db.internal:5432/netquality",
        state_dir=tmp_path,
    )

    with Runtime(settings) as rt:
        assert rt.broker is None
        assert rt.postgres is None
        assert rt.settings.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"
        assert rt.settings.database_url == (
            "postgresql+psycopg://nq:secret@db.internal:5432/netquality"
        )
        assert libpq_url(rt.settings.database_url) == settings.database_url
        assert _descendants() - before == set()
    assert list(tmp_path.iterdir()) == []
