"""Moved to :mod:`pipelines.quality.room.level`; this name stays for its importers."""

from pipelines.quality.room.level import RoomLevel, decode_room_level, encode_room_level

__all__ = ["RoomLevel", "decode_room_level", "encode_room_level"]
