"""Run the Alembic migrations from Python (the ``netquality db`` CLI, tests, services).

The script location is resolved from this package (``<project>/migrations``), not from the
working directory or ``alembic.ini``, so the functions work from anywhere. Database URLs may be
written as operators do (``postgresql://``); they are turned into psycopg 3 SQLAlchemy URLs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from pipelines.runtime import sqlalchemy_url
from pipelines.storage.models import ensure_partitions

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS_DIR = PROJECT_ROOT / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config for ``database_url`` with the project's ``migrations/`` directory."""
    if not (MIGRATIONS_DIR / "env.py").exists():
        raise FileNotFoundError(f"no Alembic environment at {MIGRATIONS_DIR}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolates '%': a URL-encoded password must be escaped to survive.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database up to ``revision`` (default: the latest)."""
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    """Migrate the database down to ``revision`` (default ``base``: drop the whole schema)."""
    command.downgrade(alembic_config(database_url), revision)


def current(database_url: str) -> str | None:
    """The revision the database is at, ``None`` if it was never migrated."""
    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str | None:
    """The latest revision among the migration scripts."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def ensure_future_partitions(database_url: str, days: int = 7) -> list[str]:
    """Create the daily ``level_changes`` partitions from today (UTC) for ``days`` days.

    Meant for a daily job (cron, k8s CronJob): run it more often than ``days`` and rows never
    land in the DEFAULT partition. Returns the partitions it created (empty when all exist).
    """
    engine = create_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            return ensure_partitions(connection, datetime.now(UTC).date(), days)
    finally:
        engine.dispose()
