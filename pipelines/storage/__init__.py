"""Postgres storage: the schema as SQLAlchemy 2 models, owned by Alembic.

:mod:`pipelines.storage.models` is the single source of the schema; the migrations under
``migrations/versions`` create it and a test proves that migrating an empty database gives
exactly the models (``alembic.autogenerate.compare_metadata`` finds no difference).
:mod:`pipelines.storage.migrate` runs the migrations from Python and the ``netquality db`` CLI.
"""

from pipelines.storage.models import (
    ANALYST_ROLE,
    Alert,
    Base,
    CurrentLevel,
    DeadletterCount,
    LevelChange,
    RegionRollup,
    RoomRollup,
    ensure_partitions,
    include_name,
    is_partition_child,
    partition_name,
)

__all__ = [
    "ANALYST_ROLE",
    "Alert",
    "Base",
    "CurrentLevel",
    "DeadletterCount",
    "LevelChange",
    "RegionRollup",
    "RoomRollup",
    "ensure_partitions",
    "include_name",
    "is_partition_child",
    "partition_name",
]
