"""The alert states' table encodings."""

from __future__ import annotations

from pipelines.quality.alerting.region import RegionAlerts
from pipelines.quality.alerting.room import RoomAlerts
from pipelines.quality.room.codec import TableCodec

_rooms = TableCodec(RoomAlerts)
_regions = TableCodec(RegionAlerts)
dump_room_alerts = _rooms.dump
load_room_alerts = _rooms.load
dump_region_alerts = _regions.dump
load_region_alerts = _regions.load
