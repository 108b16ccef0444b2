"""One partitioner per kind of key in a worker: the stages use the one they are given.

The stages once took ``partition_of or PartitionOf(...)`` and, given the shared one while it
was still empty (it was a cache then, with a length), built their own. It remembers nothing
now (the hash is compiled), but a stage given one must still use it.
"""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.streaming.alerts import AlertsProcessor, alert_rules
from pipelines.streaming.levels import LevelsProcessor, PartitionOf
from pipelines.streaming.rollups import RollupsProcessor


def test_the_shared_partitioner_is_the_one_used() -> None:
    settings = Settings.from_env()
    shared = PartitionOf(8)
    levels = LevelsProcessor(
        settings, None, None, "stats", "levels", "current", "deadletter", None, shared
    )  # type: ignore[arg-type]
    rollups = RollupsProcessor(None, None, "by-region", "rollups", None, 8, shared)  # type: ignore[arg-type]
    alerts = AlertsProcessor(
        alert_rules(settings), None, None, "by-region", "alerts", None, 8, shared
    )  # type: ignore[arg-type]
    assert levels.partition_of is shared
    assert rollups.partition_of is shared and alerts.partition_of is shared


def test_without_one_each_stage_makes_its_own() -> None:
    rollups = RollupsProcessor(None, None, "by-region", "rollups", None, 8)  # type: ignore[arg-type]
    other = RollupsProcessor(None, None, "by-region", "rollups", None, 8)  # type: ignore[arg-type]
    assert rollups.partition_of is not other.partition_of
    assert rollups.partition_of.partitions == 8
