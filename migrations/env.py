"""Alembic environment: the URL comes from netquality's settings (``DATABASE_URL``).

``target_metadata`` is the SQLAlchemy models' metadata (:mod:`pipelines.storage.models`), the
single source of the schema, so ``alembic revision --autogenerate`` proposes exactly what the
models changed. The daily partitions of ``level_changes`` are created at run time, not by the
models, so the ``include_name`` hook hides them from the comparison.

``pipelines.storage.migrate`` drives this file from Python and passes the URL as
``sqlalchemy.url``; the ``alembic`` command line falls back to ``DATABASE_URL``.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool

from pipelines.config import Settings
from pipelines.runtime import sqlalchemy_url
from pipelines.storage.models import Base, include_name

target_metadata = Base.metadata

_COMPARE_OPTIONS: dict[str, Any] = {
    "include_name": include_name,
    "compare_type": True,
    "compare_server_default": True,
}


def _url() -> str:
    configured = context.config.get_main_option("sqlalchemy.url")
    if configured:
        return configured
    settings = Settings.from_env()
    if not settings.database_url:
        raise SystemExit("DATABASE_URL is not set (the embedded Postgres comes with `netquality`)")
    return sqlalchemy_url(settings.database_url)


def run_migrations_offline() -> None:
    context.configure(
        url=_url(), target_metadata=target_metadata, literal_binds=True, **_COMPARE_OPTIONS
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, **_COMPARE_OPTIONS
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
