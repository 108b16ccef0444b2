"""Moved to :mod:`pipelines.quality.rollups.due`; this name stays for its importers."""

from pipelines.quality.rollups.due import RoomRollupsDue, load_room_due

__all__ = ["RoomRollupsDue", "load_room_due"]
