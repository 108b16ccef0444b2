"""Initial schema.

Level history (daily partitions), current levels, rollups, alerts, dead-letter counts, and the
read-only analyst role.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

The tables mirror ``pipelines.storage.models`` (a test compares them). What Alembic cannot
express is plain SQL here: the DEFAULT and daily partitions of ``level_changes`` and the
``netquality_analyst`` role with its grants. ``downgrade()`` returns to an empty schema and
drops the role only when nothing else uses it (members, or privileges in another database).
"""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

from pipelines.storage.models import ensure_partitions, partition_ddl

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ROLE = "netquality_analyst"
PARTITION_DAYS_BEHIND = 1  # events from just before midnight still arrive after it
PARTITION_DAYS_AHEAD = 7  # then the `netquality db partitions` job keeps a week ahead

TABLES = (
    "deadletter_counts",
    "alerts",
    "region_rollups",
    "room_rollups",
    "current_levels",
    "level_changes",
)


def upgrade() -> None:
    op.create_table(
        "level_changes",
        sa.Column("event_id", sa.String(length=256), nullable=False),
        sa.Column(
            "ts", sa.DateTime(timezone=True), nullable=False, comment="Event time (partition key)"
        ),
        sa.Column("room_sid", sa.String(length=128), nullable=False),
        sa.Column("participant_sid", sa.String(length=128), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column(
            "previous_level",
            sa.SmallInteger(),
            nullable=True,
            comment="NULL on a participant's first event",
        ),
        sa.Column("audio_send", sa.SmallInteger(), nullable=True),
        sa.Column("audio_recv", sa.SmallInteger(), nullable=True),
        sa.Column("video_send", sa.SmallInteger(), nullable=True),
        sa.Column("video_recv", sa.SmallInteger(), nullable=True),
        sa.Column(
            "limited_by",
            sa.Text(),
            nullable=True,
            comment="What holds the level down, e.g. video.send.bandwidth; NULL at level 5",
        ),
        sa.Column("departed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "stats",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
            comment='{"audio": {"sendStats", "recvStats"}, "video": {...}} as in the event',
        ),
        sa.Column(
            "ingested_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(level IS NULL OR level BETWEEN 0 AND "
            "5) AND "
            "(previous_level IS NULL OR previous_level BETWEEN 0 AND "
            "5) AND "
            "(audio_send IS NULL OR audio_send BETWEEN 0 AND "
            "5) AND "
            "(audio_recv IS NULL OR audio_recv BETWEEN 0 AND "
            "5) AND "
            "(video_send IS NULL OR video_send BETWEEN 0 AND "
            "5) AND "
            "(video_recv IS NULL OR video_recv BETWEEN 0 AND "
            "5)",
            name=op.f("ck_level_changes_level_range"),
        ),
        sa.PrimaryKeyConstraint("event_id", "ts", name=op.f("pk_level_changes")),
        comment="History of netquality.level.v1 level-change events; daily partitions",
        postgresql_partition_by="RANGE (ts)",
    )
    op.create_index(
        "ix_level_changes_participant_sid_ts",
        "level_changes",
        ["participant_sid", "ts"],
        unique=False,
    )
    op.create_index("ix_level_changes_region_ts", "level_changes", ["region", "ts"], unique=False)
    op.create_index(
        "ix_level_changes_room_sid_ts", "level_changes", ["room_sid", "ts"], unique=False
    )
    op.create_table(
        "current_levels",
        sa.Column("participant_sid", sa.String(length=128), nullable=False),
        sa.Column("room_sid", sa.String(length=128), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column(
            "ts",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="Time of the event that set this level",
        ),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("audio_send", sa.SmallInteger(), nullable=True),
        sa.Column("audio_recv", sa.SmallInteger(), nullable=True),
        sa.Column("video_send", sa.SmallInteger(), nullable=True),
        sa.Column("video_recv", sa.SmallInteger(), nullable=True),
        sa.Column("limited_by", sa.Text(), nullable=True),
        sa.Column("event_id", sa.String(length=256), nullable=False),
        sa.Column("departed", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(level IS NULL OR level BETWEEN 0 AND "
            "5) AND "
            "(audio_send IS NULL OR audio_send BETWEEN 0 AND "
            "5) AND "
            "(audio_recv IS NULL OR audio_recv BETWEEN 0 AND "
            "5) AND "
            "(video_send IS NULL OR video_send BETWEEN 0 AND "
            "5) AND "
            "(video_recv IS NULL OR video_recv BETWEEN 0 AND "
            "5)",
            name=op.f("ck_current_levels_level_range"),
        ),
        sa.PrimaryKeyConstraint("participant_sid", name=op.f("pk_current_levels")),
        comment="Latest level per participant",
    )
    op.create_index("ix_current_levels_region", "current_levels", ["region"], unique=False)
    op.create_index("ix_current_levels_room_sid", "current_levels", ["room_sid"], unique=False)
    op.create_table(
        "room_rollups",
        sa.Column("room_sid", sa.String(length=128), nullable=False),
        sa.Column(
            "minute", sa.DateTime(timezone=True), nullable=False, comment="Start of the minute"
        ),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("seconds_at_level_0", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("seconds_at_level_1", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("seconds_at_level_2", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("seconds_at_level_3", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("seconds_at_level_4", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("seconds_at_level_5", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("participants_seen", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("min_level", sa.SmallInteger(), nullable=True),
        sa.Column(
            "avg_level",
            sa.Double(),
            nullable=True,
            comment="Time-weighted mean level over the participant-seconds",
        ),
        sa.Column(
            "changes",
            sa.Integer(),
            server_default=sa.text("0"),
            nullable=False,
            comment="Level-change events in the minute",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(min_level IS NULL OR min_level BETWEEN 0 AND 5)",
            name=op.f("ck_room_rollups_level_range"),
        ),
        sa.PrimaryKeyConstraint("room_sid", "minute", name=op.f("pk_room_rollups")),
        comment="Per room per minute aggregates of levels",
    )
    op.create_index(
        "ix_room_rollups_region_minute", "room_rollups", ["region", "minute"], unique=False
    )
    op.create_table(
        "region_rollups",
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column(
            "minute", sa.DateTime(timezone=True), nullable=False, comment="Start of the minute"
        ),
        sa.Column("seconds_at_level_0", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("seconds_at_level_1", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("seconds_at_level_2", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("seconds_at_level_3", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("seconds_at_level_4", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("seconds_at_level_5", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("participants_seen", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("min_level", sa.SmallInteger(), nullable=True),
        sa.Column(
            "avg_level",
            sa.Double(),
            nullable=True,
            comment="Time-weighted mean level over the participant-seconds",
        ),
        sa.Column(
            "changes",
            sa.Integer(),
            server_default=sa.text("0"),
            nullable=False,
            comment="Level-change events in the minute",
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(min_level IS NULL OR min_level BETWEEN 0 AND 5)",
            name=op.f("ck_region_rollups_level_range"),
        ),
        sa.PrimaryKeyConstraint("region", "minute", name=op.f("pk_region_rollups")),
        comment="Per region per minute aggregates of levels",
    )
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(length=256), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False, comment="room_degraded, region_degraded, ..."),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("room_sid", sa.String(length=128), nullable=True),
        sa.Column("participant_sid", sa.String(length=128), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("degraded", sa.Integer(), nullable=False),
        sa.Column("share", sa.Double(), nullable=False),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('opened', 'updated', 'resolved')", name=op.f("ck_alerts_status")
        ),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alerts")),
        comment="Room/region/participant degradation alerts, latest state each",
    )
    op.create_index("ix_alerts_region_opened_at", "alerts", ["region", "opened_at"], unique=False)
    op.create_index(
        "ix_alerts_room_sid_opened_at", "alerts", ["room_sid", "opened_at"], unique=False
    )
    op.create_table(
        "deadletter_counts",
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False, comment="Start of the hour"),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("count", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.CheckConstraint("count >= 0", name=op.f("ck_deadletter_counts_count_nonnegative")),
        sa.PrimaryKeyConstraint("hour", "topic", "code", name=op.f("pk_deadletter_counts")),
        comment="Dead letters per hour, topic and error code",
    )

    # A partitioned table rejects rows no partition covers; the DEFAULT partition catches them.
    op.execute("CREATE TABLE level_changes_default PARTITION OF level_changes DEFAULT")
    start = datetime.now(UTC).date() - timedelta(days=PARTITION_DAYS_BEHIND)
    days = PARTITION_DAYS_BEHIND + 1 + PARTITION_DAYS_AHEAD
    if context.is_offline_mode():  # --sql: no connection to ask, and the table is new
        for offset in range(days):
            op.execute(partition_ddl(start + timedelta(days=offset)))
    else:
        ensure_partitions(op.get_bind(), start, days)

    # Roles are per cluster: another database's migration may have created it already, maybe
    # at this very moment, hence the IF NOT EXISTS and the exception handler.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                BEGIN
                    CREATE ROLE {ROLE} NOLOGIN;
                EXCEPTION WHEN duplicate_object OR unique_violation THEN
                    NULL;
                END;
            END IF;
        END
        $$
        """
    )
    # Default privileges cover tables created later by the role running migrations and
    # `netquality db partitions`, so new daily partitions are readable too.
    op.execute(
        f"""
        DO $$
        BEGIN
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO {ROLE}', current_schema());
            EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO {ROLE}',
                           current_schema());
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO {ROLE}',
                           current_schema());
        END
        $$
        """
    )


def downgrade() -> None:
    # Revoke first: a grant left anywhere (alembic_version included) would keep the role alive.
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                EXECUTE format(
                    'ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE SELECT ON TABLES FROM {ROLE}',
                    current_schema());
                EXECUTE format('REVOKE SELECT ON ALL TABLES IN SCHEMA %I FROM {ROLE}',
                               current_schema());
                EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {ROLE}', current_schema());
            END IF;
        END
        $$
        """
    )
    for table in TABLES:  # dropping level_changes drops its partitions and all indexes
        op.drop_table(table)
    # Keep the role while analysts' logins are members of it, or while another database still
    # grants it something (DROP ROLE then fails with dependent_objects_still_exist).
    op.execute(
        f"""
        DO $$
        BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}')
               AND NOT EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
                               WHERE r.rolname = '{ROLE}') THEN
                BEGIN
                    DROP ROLE {ROLE};
                EXCEPTION WHEN dependent_objects_still_exist THEN
                    RAISE NOTICE 'keeping role {ROLE}: %', SQLERRM;
                END;
            ELSIF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                RAISE NOTICE 'keeping role {ROLE}: other roles are members of it';
            END IF;
        END
        $$
        """
    )
