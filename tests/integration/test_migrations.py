"""The Alembic migrations against a real Postgres: a fresh database per test.

What is proven here: the schema goes up, down to nothing and up again; what the migrations
create is exactly what the models describe; rows of any date land in ``level_changes``; daily
partitions can be added (also over rows already in the DEFAULT partition) any number of times;
the analyst role reads everything, writes nothing, and is only dropped when nobody uses it.
"""

from __future__ import annotations

import io
import uuid
from contextlib import redirect_stdout
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, exc, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert

from pipelines.cli import main
from pipelines.runtime import libpq_url
from pipelines.storage import migrate
from pipelines.storage.models import (
    ANALYST_ROLE,
    Base,
    LevelChange,
    ensure_partitions,
    include_name,
    partition_name,
)

TABLES = {
    "level_changes",
    "current_levels",
    "room_rollups",
    "region_rollups",
    "alerts",
    "deadletter_counts",
    "sink_offsets",
}
VIEWS = {
    "v_room_time_at_level_hourly",
    "v_region_time_at_level_hourly",
    "v_level_steps",
    "v_limiting_metrics_daily",
    "v_participant_stability",
    "v_alerts",
}
HEAD = "0005_level_cause"


def _level_change(event_id: str, ts: datetime, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": event_id,
        "ts": ts,
        "room_sid": "RM01",
        "participant_sid": "PA01",
        "region": "us1",
        "level": 3,
        "previous_level": 5,
        "audio_send": 5,
        "audio_recv": 4,
        "video_send": 3,
        "video_recv": None,
        "limited_by": "video.send.bandwidth",
        "stats": {"video": {"sendStats": {"bandwidth": {"actual": 400000, "level": 3}}}},
    }
    row.update(overrides)
    return row


def _partition_of(conn: Connection, event_id: str) -> str:
    return conn.execute(
        text("SELECT tableoid::regclass::text FROM level_changes WHERE event_id = :id"),
        {"id": event_id},
    ).scalar_one()


def _role_exists(conn: Connection) -> bool:
    return bool(
        conn.execute(
            text("SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :r)"), {"r": ANALYST_ROLE}
        ).scalar()
    )


def test_upgrade_downgrade_upgrade_round_trip(db: Any) -> None:
    assert migrate.current(db.url) is None
    migrate.upgrade(db.url)
    assert migrate.current(db.url) == migrate.head() == HEAD
    relations = db.relations()
    assert TABLES | {"alembic_version", "level_changes_default"} <= relations
    today = datetime.now(UTC).date()
    assert partition_name(today) in relations
    assert partition_name(today + timedelta(days=7)) in relations

    migrate.downgrade(db.url)
    assert migrate.current(db.url) is None
    assert db.relations() == {"alembic_version"}
    with db.engine.connect() as conn:  # nothing granted is left behind in this database
        assert conn.execute(text("SELECT count(*) FROM pg_default_acl")).scalar() == 0
        nspacl = conn.execute(
            text("SELECT coalesce(nspacl::text, '') FROM pg_namespace WHERE oid = "
                 "current_schema()::regnamespace")
        ).scalar_one()
        assert ANALYST_ROLE not in nspacl

    migrate.upgrade(db.url)
    assert migrate.current(db.url) == HEAD
    assert db.relations() >= TABLES | VIEWS


def test_analyst_views_go_up_and_down_with_0003(db: Any) -> None:
    migrate.upgrade(db.url, "0002")
    assert not db.relations() & VIEWS
    migrate.upgrade(db.url, "0003_analyst_views")
    assert db.relations() >= VIEWS
    with db.engine.connect() as conn, conn.begin() as tx:
        conn.execute(text(f"SET LOCAL ROLE {ANALYST_ROLE}"))
        for view in sorted(VIEWS):
            assert conn.execute(text(f"SELECT count(*) FROM {view}")).scalar() == 0
        tx.rollback()
    migrate.downgrade(db.url, "0002")
    assert migrate.current(db.url) == "0002"
    assert not db.relations() & VIEWS
    assert db.relations() >= TABLES


def test_migrated_schema_matches_the_models(migrated: Any) -> None:
    """The models are the single source: autogenerate would propose nothing."""
    with migrated.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": include_name,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        assert compare_metadata(context, Base.metadata) == []


def test_offline_sql_script_has_the_partitions(db: Any) -> None:
    """``alembic upgrade --sql`` works without asking the database anything."""
    out = io.StringIO()
    config = migrate.alembic_config(db.url)
    config.output_buffer = out
    command.upgrade(config, "head", sql=True)
    script = out.getvalue()
    assert "PARTITION OF level_changes DEFAULT" in script
    assert f"CREATE TABLE IF NOT EXISTS {partition_name(datetime.now(UTC).date())}" in script
    assert db.relations() == set()


def test_level_changes_of_any_date_land_and_partitions_are_idempotent(
    migrated: Any,
) -> None:
    now = datetime.now(UTC)
    long_ago = datetime(1999, 3, 4, 23, 59, 59, tzinfo=UTC)
    with migrated.engine.begin() as conn:
        conn.execute(
            insert(LevelChange),
            [_level_change("PA01:1", now), _level_change("PA01:2", long_ago, level=0)],
        )
        assert _partition_of(conn, "PA01:1") == partition_name(now.date())
        assert _partition_of(conn, "PA01:2") == "level_changes_default"
        # Replays upsert on (event_id, ts): the same event does not land twice.
        replay = pg_insert(LevelChange).values(_level_change("PA01:1", now))
        conn.execute(replay.on_conflict_do_nothing(index_elements=["event_id", "ts"]))
        assert conn.execute(select(func.count()).select_from(LevelChange)).scalar() == 2

    today = now.date()
    with migrated.engine.begin() as conn:
        assert ensure_partitions(conn, today, 7) == []  # the migration made them already
        later = today + timedelta(days=30)
        assert ensure_partitions(conn, later, 2) == [
            partition_name(later),
            partition_name(later + timedelta(days=1)),
        ]
        assert ensure_partitions(conn, later, 2) == []
    assert migrate.ensure_future_partitions(migrated.url, days=3) == []

    # A partition for a day whose rows sit in DEFAULT takes them over.
    with migrated.engine.begin() as conn:
        assert ensure_partitions(conn, long_ago.date(), 1) == [partition_name(long_ago.date())]
        assert _partition_of(conn, "PA01:2") == partition_name(long_ago.date())
        assert conn.execute(text("SELECT count(*) FROM level_changes_default")).scalar() == 0
        assert conn.execute(select(func.count()).select_from(LevelChange)).scalar() == 2
        # The moved-into partition got the parent's indexes and primary key on ATTACH.
        indexes = conn.execute(
            text("SELECT count(*) FROM pg_indexes WHERE tablename = :t"),
            {"t": partition_name(long_ago.date())},
        ).scalar()
        assert indexes == 3  # primary key, room and region over time (0004)
        with pytest.raises(exc.IntegrityError):
            conn.execute(insert(LevelChange), [_level_change("PA01:2", long_ago)])


def test_level_check_rejects_out_of_range_levels(migrated: Any) -> None:
    with migrated.engine.begin() as conn, pytest.raises(exc.IntegrityError, match="level_range"):
        conn.execute(insert(LevelChange), [_level_change("PA01:9", datetime.now(UTC), level=6)])


def _denied() -> Any:
    return pytest.raises(exc.ProgrammingError, match="permission denied")


def test_analyst_role_reads_everything_and_writes_nothing(migrated: Any) -> None:
    later = date.today() + timedelta(days=60)
    with migrated.engine.begin() as conn:  # created after the migration: default privileges
        ensure_partitions(conn, later, 1)
        conn.execute(insert(LevelChange), [_level_change("PA01:1", datetime.now(UTC))])
        assert conn.execute(
            text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": ANALYST_ROLE}
        ).scalar_one() is False

    with migrated.engine.connect() as conn, conn.begin() as tx:
        conn.execute(text(f"SET LOCAL ROLE {ANALYST_ROLE}"))
        assert conn.execute(text("SELECT current_user")).scalar() == ANALYST_ROLE
        for table in sorted(TABLES):
            conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
        assert conn.execute(select(func.count()).select_from(LevelChange)).scalar() == 1
        conn.execute(text(f"SELECT count(*) FROM {partition_name(later)}")).scalar()
        for table in sorted(TABLES):
            with _denied(), conn.begin_nested():
                conn.execute(text(f"INSERT INTO {table} DEFAULT VALUES"))
        with _denied(), conn.begin_nested():
            conn.execute(text("DELETE FROM level_changes"))
        tx.rollback()


def _dependents_elsewhere(conn: Connection, ours: set[str]) -> int:
    """Grants to the analyst role in databases other than ``ours``, plus its members."""
    return int(
        conn.execute(
            text(
                "SELECT (SELECT count(*) FROM pg_shdepend d JOIN pg_database db ON db.oid = d.dbid"
                "        WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid"
                "          AND db.datname <> ALL(:ours))"
                "     + (SELECT count(*) FROM pg_auth_members m WHERE m.roleid = r.oid)"
                " FROM pg_roles r WHERE r.rolname = :role"
            ),
            {"ours": sorted(ours), "role": ANALYST_ROLE},
        ).scalar_one()
    )


def test_downgrade_drops_the_role_only_when_nothing_else_uses_it(make_db: Any) -> None:
    first, second = make_db(), make_db()
    migrate.upgrade(first.url)
    migrate.upgrade(second.url)
    migrate.downgrade(first.url)
    with first.engine.connect() as conn:
        assert _role_exists(conn), "the second database still grants it"
        others = _dependents_elsewhere(conn, {first.name, second.name})
    migrate.downgrade(second.url)
    with second.engine.connect() as conn:
        # Dropped unless a database outside this test (another test's) still uses it.
        assert _role_exists(conn) == (others > 0)


def test_downgrade_keeps_the_role_while_logins_are_members(migrated: Any) -> None:
    member = f"nq_member_{uuid.uuid4().hex[:8]}"
    with migrated.engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {member} LOGIN IN ROLE {ANALYST_ROLE}"))
    try:
        migrate.downgrade(migrated.url)
        with migrated.engine.connect() as conn:
            assert _role_exists(conn)
    finally:
        with migrated.engine.begin() as conn:
            conn.execute(text(f"DROP ROLE {member}"))


def test_cli_db_commands(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", libpq_url(db.url))
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["db", "current"]) == 0
        assert main(["db", "upgrade"]) == 0
        assert main(["db", "current"]) == 0
        assert main(["db", "partitions", "--days", "9"]) == 0
        assert main(["db", "partitions", "--days", "9"]) == 0
        assert main(["db", "downgrade", "base"]) == 0
    lines = out.getvalue().splitlines()
    day8 = partition_name(datetime.now(UTC).date() + timedelta(days=8))
    assert lines == [
        f"none (head {HEAD})",
        f"database at revision {HEAD}",
        f"{HEAD} (head {HEAD}, up to date)",
        f"created 1 partitions: {day8}",
        "created 0 partitions",
        "database at revision none (base)",
    ]
    assert db.relations() == {"alembic_version"}
