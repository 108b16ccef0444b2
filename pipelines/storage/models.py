"""The Postgres schema: SQLAlchemy 2 declarative models, the single source of truth.

Who reads these tables decides their shape. Analysts, dashboards and alerting ask "one room over
a time range" and "one region over a time range", so every table that grows with time has an
index (or primary key) that starts with the room or region and ends with the time column.
Every time is ``timestamptz`` (the ``datetime`` annotation maps to it), so nobody has to guess
which zone a value is in; partition bounds are UTC days.

Alembic owns the DDL (``migrations/versions``); these models must describe exactly what the
migrations create, and ``tests/integration/test_migrations.py`` checks that with
``alembic.autogenerate.compare_metadata``. Things autogenerate cannot express or compare live
next to the models as plain SQL helpers: the partitions of ``level_changes``
(:func:`ensure_partitions`) and the read-only analyst role (:data:`ANALYST_ROLE`, created by the
migration).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Connection,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ANALYST_ROLE = "netquality_analyst"
"""NOLOGIN role with read-only access to every table; grant it to analysts' login roles."""

SID = 128  # pipelines.contracts.types.Sid
REGION = 64  # pipelines.contracts.types.Region
EVENT_ID = 256  # pipelines.contracts.level.EventId, AlertEvent.alert_id
TOPIC = 249  # Kafka's own limit on topic names
CODE = 64  # pipelines.contracts.deadletter.DeadLetterError.code

NAMING_CONVENTION: Mapping[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Deterministic constraint names, so later migrations can drop or alter them by name."""


class Base(DeclarativeBase):
    """Declarative base: ``datetime`` is ``timestamptz``, ``float`` is ``double precision``."""

    metadata = MetaData(naming_convention=dict(NAMING_CONVENTION))
    type_annotation_map = {  # noqa: RUF012 (SQLAlchemy reads this class attribute)
        datetime: DateTime(timezone=True),
        float: Double(),
        int: Integer(),
        str: Text(),
        bool: Boolean(),
        dict[str, Any]: JSONB(),
    }


def _level_check(*columns: str) -> CheckConstraint:
    """Levels are 0..5 (NULL where a component has no track): bad writes fail loudly."""
    condition = " AND ".join(f"({c} IS NULL OR {c} BETWEEN 0 AND 5)" for c in columns)
    return CheckConstraint(condition, name="level_range")


# -- level_changes: the history, partitioned by day ---------------------------------------------

LEVEL_CHANGES = "level_changes"
DEFAULT_PARTITION = f"{LEVEL_CHANGES}_default"
_PARTITION_RE = re.compile(rf"^{LEVEL_CHANGES}_(p\d{{8}}|default)$")
_PARTITION_LOCK = "netquality.level_changes.partitions"
_CAUSE = (
    'Whose network: {"kind": "upstream", "participantSid", "trackSid"} of the publisher whose'
    " uplink the room attributed (docs/levels.md); NULL when none (migration 0005)"
)


class LevelChange(Base):
    """History of ``netquality.level.v1``: one row per level-change event.

    Range-partitioned by ``ts`` (the event time) into **daily** partitions, with a DEFAULT
    partition that catches anything no daily partition covers (late replays, clock skew, a
    missed partition job), so an insert is never rejected. Why daily: the questions are "this
    room / region over the last hours or days", which prune to one or a few partitions; a day
    is the natural retention step (drop a partition instead of a bulk DELETE that bloats the
    table and WAL); and at hundreds of thousands of participants a day is millions of rows,
    so monthly partitions would be too coarse to prune and weekly would make retention
    clumsy, while a year of daily partitions (365) is well within what the planner prunes
    cheaply. Partitions are created ahead of time by :func:`ensure_partitions`.

    The primary key is ``(event_id, ts)`` because a partitioned table's unique constraints must
    contain the partition key; the event id alone is already unique (``"{participant}:{seq}"``),
    and the sink upserts on this key so replays never duplicate.

    Written at the sink's rate, so it carries only what reads need (migration 0004): indexes
    for one room and one region over time, and ``stats`` as ``json``, read only whole, which
    costs the server half the CPU per insert of ``jsonb``.
    """

    __tablename__ = LEVEL_CHANGES
    __table_args__ = (
        _level_check(
            "level", "previous_level", "audio_send", "audio_recv", "video_send", "video_recv"
        ),
        Index("ix_level_changes_room_sid_ts", "room_sid", "ts"),
        Index("ix_level_changes_region_ts", "region", "ts"),
        {
            "postgresql_partition_by": "RANGE (ts)",
            "comment": "History of netquality.level.v1 level-change events; daily partitions",
        },
    )

    event_id: Mapped[str] = mapped_column(String(EVENT_ID), primary_key=True)
    ts: Mapped[datetime] = mapped_column(primary_key=True, comment="Event time (partition key)")
    room_sid: Mapped[str] = mapped_column(String(SID))
    participant_sid: Mapped[str] = mapped_column(String(SID))
    region: Mapped[str] = mapped_column(String(REGION))
    level: Mapped[int] = mapped_column(SmallInteger)
    previous_level: Mapped[int | None] = mapped_column(
        SmallInteger, comment="NULL on a participant's first event"
    )
    audio_send: Mapped[int | None] = mapped_column(SmallInteger)
    audio_recv: Mapped[int | None] = mapped_column(SmallInteger)
    video_send: Mapped[int | None] = mapped_column(SmallInteger)
    video_recv: Mapped[int | None] = mapped_column(SmallInteger)
    limited_by: Mapped[str | None] = mapped_column(
        comment="What holds the level down, e.g. video.send.bandwidth; NULL at level 5"
    )
    departed: Mapped[bool] = mapped_column(server_default=text("false"))
    stats: Mapped[dict[str, Any]] = mapped_column(
        JSON(),
        server_default=text("'{}'::json"),
        comment='{"audio": {"sendStats", "recvStats"}, "video": {...}} as in the event',
    )
    cause: Mapped[dict[str, Any] | None] = mapped_column(JSON(), comment=_CAUSE)
    ingested_at: Mapped[datetime] = mapped_column(server_default=func.now())


def is_partition_child(name: str) -> bool:
    """Whether a table name is one of ``level_changes``' partitions (not in the models)."""
    return _PARTITION_RE.match(name) is not None


def include_name(name: str | None, type_: str, parent_names: Mapping[str, Any]) -> bool:
    """Alembic ``include_name`` hook: leave the partition children out of autogenerate.

    They are created by :func:`ensure_partitions` at run time, so the models cannot list them;
    without this hook every autogenerate would propose dropping them.
    """
    return not (type_ == "table" and name is not None and is_partition_child(name))


def partition_name(day: date) -> str:
    """``level_changes_pYYYYMMDD``: the partition holding the UTC day ``day``."""
    return f"{LEVEL_CHANGES}_p{day:%Y%m%d}"


def _bound(day: date) -> str:
    return datetime.combine(day, time(), tzinfo=UTC).isoformat(sep=" ")


def partition_bounds(day: date) -> str:
    """``FOR VALUES FROM (...) TO (...)``: the UTC day ``day`` as a range of ``ts``."""
    return f"FOR VALUES FROM ('{_bound(day)}') TO ('{_bound(day + timedelta(days=1))}')"


def partition_ddl(day: date) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of the partition for ``day`` (when the default is empty)."""
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(day)} "
        f"PARTITION OF {LEVEL_CHANGES} {partition_bounds(day)}"
    )


def ensure_partitions(connection: Connection, start: date, days: int) -> list[str]:
    """Create the daily partitions of ``level_changes`` for ``days`` UTC days from ``start``.

    Idempotent and safe to run concurrently (a transaction-scoped advisory lock serialises
    callers); returns the names of the partitions it created. Runs in the caller's transaction,
    so the caller commits.

    A new partition's range must not hold rows in the DEFAULT partition (Postgres refuses
    ``CREATE TABLE ... PARTITION OF`` then). If the default partition has rows for that day,
    the partition is built as a plain table, those rows are moved into it, and it is attached,
    all in one transaction, so back-filling partitions for old data also works.
    """
    if days < 0:
        raise ValueError(f"days must be >= 0, not {days}")
    connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:lock))"), {"lock": _PARTITION_LOCK}
    )
    created: list[str] = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        name = partition_name(day)
        exists = connection.execute(text("SELECT to_regclass(:name)"), {"name": name}).scalar()
        if exists is not None:
            continue
        lo, hi = _bound(day), _bound(day + timedelta(days=1))
        stranded = connection.execute(
            text(
                f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} "
                "WHERE ts >= CAST(:lo AS timestamptz) AND ts < CAST(:hi AS timestamptz))"
            ),
            {"lo": lo, "hi": hi},
        ).scalar()
        if not stranded:
            connection.execute(text(partition_ddl(day)))
        else:
            connection.execute(
                text(
                    f"CREATE TABLE {name} (LIKE {LEVEL_CHANGES} "
                    "INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
                )
            )
            connection.execute(
                text(
                    f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
                    "WHERE ts >= CAST(:lo AS timestamptz) AND ts < CAST(:hi AS timestamptz) "
                    f"RETURNING *) INSERT INTO {name} SELECT * FROM moved"
                ),
                {"lo": lo, "hi": hi},
            )
            connection.execute(
                text(f"ALTER TABLE {LEVEL_CHANGES} ATTACH PARTITION {name} {partition_bounds(day)}")
            )
        created.append(name)
    return created


# -- current_levels ------------------------------------------------------------------------------


class CurrentLevel(Base):
    """The latest level of every participant (the compacted ``levels.current`` topic as a table).

    One row per participant, upserted by the sink only when the incoming ``ts`` is newer, so a
    replay cannot move a participant back in time. ``updated_at`` is when the sink wrote it
    (set it explicitly in upserts: ``ON CONFLICT DO UPDATE`` does not apply column defaults).
    """

    __tablename__ = "current_levels"
    __table_args__ = (
        _level_check("level", "audio_send", "audio_recv", "video_send", "video_recv"),
        Index("ix_current_levels_room_sid", "room_sid"),
        Index("ix_current_levels_region", "region"),
        {"comment": "Latest level per participant"},
    )

    participant_sid: Mapped[str] = mapped_column(String(SID), primary_key=True)
    room_sid: Mapped[str] = mapped_column(String(SID))
    region: Mapped[str] = mapped_column(String(REGION))
    ts: Mapped[datetime] = mapped_column(comment="Time of the event that set this level")
    level: Mapped[int] = mapped_column(SmallInteger)
    audio_send: Mapped[int | None] = mapped_column(SmallInteger)
    audio_recv: Mapped[int | None] = mapped_column(SmallInteger)
    video_send: Mapped[int | None] = mapped_column(SmallInteger)
    video_recv: Mapped[int | None] = mapped_column(SmallInteger)
    limited_by: Mapped[str | None]
    event_id: Mapped[str] = mapped_column(String(EVENT_ID))
    departed: Mapped[bool] = mapped_column(server_default=text("false"))
    # jsonb, not json: the sink's upsert compares the stored row with the incoming one, and
    # json has no equality.
    cause: Mapped[dict[str, Any] | None] = mapped_column(JSONB(), comment=_CAUSE)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


# -- rollups -------------------------------------------------------------------------------------


class _Rollup:
    """Columns shared by the per-minute room and region rollups.

    Not partitioned, on purpose: a rollup is one row per room (or region) per minute, bounded by
    the number of active rooms rather than by participants x changes, and it is upserted many
    times within its minute, which partition routing would only slow down. If retention ever
    needs drop-by-partition, the key already contains ``minute``, so converting is possible.
    """

    seconds_at_level_0: Mapped[float] = mapped_column(server_default=text("0"), sort_order=10)
    seconds_at_level_1: Mapped[float] = mapped_column(server_default=text("0"), sort_order=11)
    seconds_at_level_2: Mapped[float] = mapped_column(server_default=text("0"), sort_order=12)
    seconds_at_level_3: Mapped[float] = mapped_column(server_default=text("0"), sort_order=13)
    seconds_at_level_4: Mapped[float] = mapped_column(server_default=text("0"), sort_order=14)
    seconds_at_level_5: Mapped[float] = mapped_column(server_default=text("0"), sort_order=15)
    participants_seen: Mapped[int] = mapped_column(server_default=text("0"), sort_order=16)
    min_level: Mapped[int | None] = mapped_column(SmallInteger, sort_order=17)
    avg_level: Mapped[float | None] = mapped_column(
        sort_order=18, comment="Time-weighted mean level over the participant-seconds"
    )
    changes: Mapped[int] = mapped_column(
        server_default=text("0"), sort_order=19, comment="Level-change events in the minute"
    )
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), sort_order=20)


class RoomRollup(_Rollup, Base):
    """One room, one minute: participant-seconds at each level, min/avg level, changes."""

    __tablename__ = "room_rollups"
    __table_args__ = (
        _level_check("min_level"),
        Index("ix_room_rollups_region_minute", "region", "minute"),
        {"comment": "Per room per minute aggregates of levels"},
    )

    room_sid: Mapped[str] = mapped_column(String(SID), primary_key=True)
    minute: Mapped[datetime] = mapped_column(primary_key=True, comment="Start of the minute")
    region: Mapped[str] = mapped_column(String(REGION))


class RegionRollup(_Rollup, Base):
    """One region, one minute: the same aggregates over all of the region's participants."""

    __tablename__ = "region_rollups"
    __table_args__ = (
        _level_check("min_level"),
        {"comment": "Per region per minute aggregates of levels"},
    )

    region: Mapped[str] = mapped_column(String(REGION), primary_key=True)
    minute: Mapped[datetime] = mapped_column(primary_key=True, comment="Start of the minute")


# -- alerts and dead letters ---------------------------------------------------------------------


class Alert(Base):
    """The latest state of each alert (``netquality.alert.v1``), keyed by its stable id.

    Upserted on every opened/updated/resolved event; ``payload`` keeps the whole last event
    (worst participants, limiting metrics, message) for the alerting UI.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint("status IN ('opened', 'updated', 'resolved')", name="status"),
        Index("ix_alerts_region_opened_at", "region", "opened_at"),
        Index("ix_alerts_room_sid_opened_at", "room_sid", "opened_at"),
        {"comment": "Room/region/participant degradation alerts, latest state each"},
    )

    alert_id: Mapped[str] = mapped_column(String(EVENT_ID), primary_key=True)
    kind: Mapped[str] = mapped_column(comment="room_degraded, region_degraded, ...")
    status: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(REGION))
    room_sid: Mapped[str | None] = mapped_column(String(SID))
    participant_sid: Mapped[str | None] = mapped_column(String(SID))
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    participants: Mapped[int]
    degraded: Mapped[int]
    share: Mapped[float]
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))


class DeadletterCount(Base):
    """Rejected input counted per hour, source topic and error code (the bytes stay in Kafka)."""

    __tablename__ = "deadletter_counts"
    __table_args__ = (
        CheckConstraint("count >= 0", name="count_nonnegative"),
        {"comment": "Dead letters per hour, topic and error code"},
    )

    hour: Mapped[datetime] = mapped_column(primary_key=True, comment="Start of the hour")
    topic: Mapped[str] = mapped_column(String(TOPIC), primary_key=True)
    code: Mapped[str] = mapped_column(String(CODE), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class SinkOffset(Base):
    """How far the sink has applied a topic partition whose writes are not idempotent.

    Counting dead letters adds to a counter, so a replay would count twice. The sink keeps the
    next offset to apply per partition here and moves it in the same transaction as the
    counts: whatever consumer group replays the topic, each record is counted once.
    """

    __tablename__ = "sink_offsets"

    topic: Mapped[str] = mapped_column(String(TOPIC), primary_key=True)
    partition: Mapped[int] = mapped_column(primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
