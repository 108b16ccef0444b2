"""Alembic environment: the URL comes from netquality's settings (``DATABASE_URL``).

The schema (SQLAlchemy models as the single source, history, current levels, rollups) arrives
with the Postgres work; until then there is nothing to migrate.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from pipelines.config import Settings
from pipelines.runtime import sqlalchemy_url

target_metadata = None


def _url() -> str:
    configured = context.config.get_main_option("sqlalchemy.url")
    if configured:
        return configured
    settings = Settings.from_env()
    if not settings.database_url:
        raise SystemExit("DATABASE_URL is not set (the embedded Postgres comes with `netquality`)")
    return sqlalchemy_url(settings.database_url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
