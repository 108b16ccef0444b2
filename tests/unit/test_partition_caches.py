"""One partition cache per kind of key in a worker: the stages use the cache they are given.

``PartitionOf`` has a length, so an empty one is falsy; the stages once took
``partition_of or PartitionOf(...)`` and, given the shared cache while it was still empty (at
start), built their own: the levels agent then kept a second cache of every participant that
departures never cleared.
"""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.streaming.alerts import AlertsProcessor, alert_rules
from pipelines.streaming.levels import LevelsProcessor, PartitionOf
from pipelines.streaming.rollups import RollupsProcessor


def test_an_empty_shared_cache_is_the_one_used() -> None:
    settings = Settings.from_env()
    shared = PartitionOf(8)
    assert not shared  # empty: falsy, which is the trap
    levels = LevelsProcessor(
        settings, None, None, None, None, None, None, None, "changelog", shared
    )  # type: ignore[arg-type]
    rollups = RollupsProcessor(None, None, "by-region", "rollups", None, 8, shared)  # type: ignore[arg-type]
    alerts = AlertsProcessor(
        alert_rules(settings), None, None, "by-region", "alerts", None, 8, shared
    )  # type: ignore[arg-type]
    assert levels.partition_of is shared
    assert rollups.partition_of is shared and alerts.partition_of is shared


def test_departures_forgotten_by_the_table_are_gone_for_the_agent() -> None:
    shared = PartitionOf(8)
    levels = LevelsProcessor(
        Settings.from_env(), None, None, None, None, None, None, None, "changelog", shared
    )  # type: ignore[arg-type]
    levels.partition_of("PA1")
    shared.forget_key(b"PA1")  # what the table does once PA1's tombstone is written
    assert len(levels.partition_of) == 0


def test_without_one_each_stage_makes_its_own() -> None:
    rollups = RollupsProcessor(None, None, "by-region", "rollups", None, 8)  # type: ignore[arg-type]
    other = RollupsProcessor(None, None, "by-region", "rollups", None, 8)  # type: ignore[arg-type]
    assert rollups.partition_of is not other.partition_of
    assert rollups.partition_of("RM1") == other.partition_of("RM1")
