"""The six netquality topics (ARCHITECTURE.md section 3), created idempotently from Settings.

Existing topics are left as they are (a differing partition count is logged, not "fixed":
repartitioning a keyed topic would move participants between workers). Configs follow Kafka:
``levels.current`` is compacted because it is a latest-value-per-key bootstrap; the others are
delete-retention logs. A broker that rejects a config gets the topic without it, with a warning,
so a minimal Kafka-compatible broker still works.

Tansu 0.6 (the embedded broker) accepts and echoes any config, but its ``memory://`` engine
enforces neither compaction nor retention, so the configs only take effect on a real cluster.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from pipelines.config import Settings
from pipelines.kafka.clients import KafkaClients, admin_session, blocking
from pipelines.streaming.upstream import upstream_topic

log = logging.getLogger(__name__)

_DAY_MS = 24 * 60 * 60 * 1000

# Kafka error codes we handle by name (aiokafka.errors has the classes; codes keep it explicit).
_TOPIC_ALREADY_EXISTS = 36
_INVALID_CONFIG = 40
_POLICY_VIOLATION = 44
_UNSUPPORTED_CONFIG_ERRORS = {_INVALID_CONFIG, _POLICY_VIOLATION}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """What one topic should look like."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str] = field(default_factory=dict)


def _delete(retention_days: int) -> dict[str, str]:
    return {"cleanup.policy": "delete", "retention.ms": str(retention_days * _DAY_MS)}


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The six topics with their configs; retention says how long a replay can reach back."""
    p, rf = settings.partitions, settings.replication_factor
    return [
        # Raw samples are only worth re-scoring for a short while.
        TopicSpec(settings.topic_stats, p, rf, _delete(1)),
        # History is in Postgres; a week of Kafka history covers a sink outage with margin.
        TopicSpec(settings.topic_levels, p, rf, _delete(7)),
        # Latest level per participant: keep the newest record per key forever.
        TopicSpec(
            settings.topic_levels_current, p, rf,
            {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
             "delete.retention.ms": str(_DAY_MS)},
        ),
        TopicSpec(settings.topic_rollups, p, rf, _delete(7)),
        TopicSpec(settings.topic_alerts, p, rf, _delete(30)),
        # Rejected input is kept long enough for someone to look at it.
        TopicSpec(settings.topic_deadletter, p, rf, _delete(14)),
    ]


@dataclass(frozen=True, slots=True)
class EnsureResult:
    """What :func:`ensure_topics` did, topic by topic."""

    created: list[str]
    existing: list[str]
    configs_dropped: list[str]  # created, but without configs the broker rejected


def ensure_topics(
    settings: Settings,
    *,
    bootstrap_servers: str | None = None,
    specs: list[TopicSpec] | None = None,
    timeout_s: float = 30.0,
) -> EnsureResult:
    """Create whatever topics are missing; existing ones are fine. Blocking: the entry points
    call it before they start their event loop (from async code, ``asyncio.to_thread``)."""
    wanted = {s.name: s for s in (specs if specs is not None else topic_specs(settings))}
    clients = KafkaClients(settings, bootstrap_servers)
    created, existing, dropped = blocking(_ensure(clients, wanted, timeout_s))
    log.info("topics: created=%s existing=%s configs_dropped=%s", created, existing, dropped)
    return EnsureResult(created=created, existing=existing, configs_dropped=dropped)


async def _ensure(
    clients: KafkaClients, wanted: dict[str, TopicSpec], timeout_s: float
) -> tuple[list[str], list[str], list[str]]:
    async with admin_session(clients, timeout_s) as admin:
        created, existing, dropped = await _create(
            admin, list(wanted.values()), int(timeout_s * 1000)
        )
        if created:
            await _wait_for_leaders(admin, created, timeout_s)
        counts = await _partition_counts(admin, existing)
    for name in existing:
        have, spec = counts.get(name), wanted[name]
        if have is not None and have != spec.partitions:
            log.warning("topic %s exists with %s partitions, settings say %s; left as is",
                        name, have, spec.partitions)
    return created, existing, dropped


async def _create(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], timeout_ms: int
) -> tuple[list[str], list[str], list[str]]:
    created: list[str] = []
    existing: list[str] = []
    dropped: list[str] = []
    results = await _create_request(admin, specs, timeout_ms, with_configs=True)
    retry: list[TopicSpec] = []
    for spec in specs:
        code, message = results[spec.name]
        if code == 0:
            created.append(spec.name)
        elif code == _TOPIC_ALREADY_EXISTS:
            existing.append(spec.name)
        elif code in _UNSUPPORTED_CONFIG_ERRORS and spec.configs:
            log.warning("broker rejected configs %s of %s (%s); creating it without them",
                        dict(spec.configs), spec.name, message)
            retry.append(spec)
        else:
            raise TopicError(spec.name, code, message)
    if retry:
        results = await _create_request(admin, retry, timeout_ms, with_configs=False)
        for spec in retry:
            code, message = results[spec.name]
            if code == 0:
                created.append(spec.name)
                dropped.append(spec.name)
            elif code == _TOPIC_ALREADY_EXISTS:  # created concurrently by someone else
                existing.append(spec.name)
            else:
                raise TopicError(spec.name, code, message)
    return created, existing, dropped


async def _create_request(
    admin: AIOKafkaAdminClient, specs: list[TopicSpec], timeout_ms: int, *, with_configs: bool
) -> dict[str, tuple[int, str | None]]:
    request = [
        NewTopic(s.name, s.partitions, s.replication_factor,
                 topic_configs=dict(s.configs) if with_configs else {})
        for s in specs
    ]  # fmt: skip
    response = (await admin.create_topics(request, timeout_ms=timeout_ms)).to_object()
    return {t["topic"]: (t["error_code"], t.get("error_message")) for t in response["topic_errors"]}


async def _wait_for_leaders(
    admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float
) -> None:
    """Until every partition of the new topics has a leader (clients can use them then)."""
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(topics)
        ready = {
            t["topic"] for t in described
            if t["error_code"] == 0 and t["partitions"]
            and all(p["leader"] >= 0 for p in t["partitions"])
        }  # fmt: skip
        if ready >= set(topics):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without leaders after {timeout_s}s: "
                               f"{sorted(set(topics) - ready)}")  # fmt: skip
        await asyncio.sleep(0.1)


async def _partition_counts(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int]:
    if not topics:
        return {}
    return {
        t["topic"]: len(t.get("partitions") or [])
        for t in await admin.describe_topics(topics)
        if t.get("error_code", 0) == 0
    }


class TopicError(RuntimeError):
    """The broker refused to create a topic for a reason we cannot work around."""

    def __init__(self, topic: str, code: int, message: str | None) -> None:
        super().__init__(f"creating topic {topic!r} failed: error {code} {message or ''}".strip())
        self.topic = topic
        self.code = code


def describe_partitions(
    bootstrap_servers: str, topics: list[str], settings: Settings | None = None
) -> dict[str, int]:
    """Partition count per existing topic (for checks and the CLI)."""
    clients = KafkaClients(settings or Settings(), bootstrap_servers)

    async def describe() -> dict[str, int]:
        async with admin_session(clients, 30.0) as admin:
            # Only topics that exist: describing one may create it (a metadata request that
            # allows auto-creation; Tansu does), with the broker's default partition count.
            existing = set(await admin.list_topics())
            return await _partition_counts(admin, [t for t in topics if t in existing])

    return blocking(describe())


class PartitionMismatchError(RuntimeError):
    """A keyed topic exists with another partition count than ``NETQUALITY_PARTITIONS``."""


def check_co_partitioned(settings: Settings, bootstrap_servers: str | None = None) -> None:
    """Refuse to run when a keyed topic has another partition count than the settings say.

    The levels agent keeps each participant's state in the changelog partition the default
    partitioner gives its key, and re-keys samples that sit elsewhere; with a different count
    on the stats topic every sample would look misplaced and be re-published forever.
    """
    bootstrap = bootstrap_servers or settings.kafka_bootstrap_servers
    if not bootstrap:
        raise ValueError("no bootstrap servers to check partitions against")
    # The attribution views' topic too: its partitions must be the stats topic's, so that
    # Faust's assignor (co-partitioned: same count, same subscribers) gives a participant's
    # stats and view partitions to one worker (pipelines/streaming/upstream.py).
    topics = [
        settings.topic_stats, settings.topic_levels, settings.topic_levels_current,
        upstream_topic(settings),
    ]  # fmt: skip
    wrong = {
        name: count
        for name, count in describe_partitions(bootstrap, topics, settings).items()
        if count != settings.partitions
    }
    if wrong:
        raise PartitionMismatchError(
            f"NETQUALITY_PARTITIONS={settings.partitions} but existing topics have "
            f"{wrong}: set NETQUALITY_PARTITIONS to match, or recreate the topics"
        )
