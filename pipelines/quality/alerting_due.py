"""Moved to :mod:`pipelines.quality.alerting.due`; this name stays for its importers."""

from pipelines.quality.alerting.due import RoomAlertsDue, TrackerView, load_room_due, tracker_due

__all__ = ["RoomAlertsDue", "TrackerView", "load_room_due", "tracker_due"]
