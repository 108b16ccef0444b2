"""Stream time for judging silence and event times: where the stream is, not where the wall
clock (or a client's clock) is."""

from __future__ import annotations

from pipelines.config import Settings
from pipelines.quality.event_time import EventTimeBounds, Verdict, judge_event_time
from pipelines.quality.room.level import RoomLevel


class StreamClock:
    """The newest produce time read, advanced by the wall clock only while nothing arrives.

    Draining a backlog, batches keep coming and the clock stays at the stream's own position,
    so samples not read yet never look like silence. When every producer goes quiet, batches
    stop and the wall clock takes over, so silence is still noticed. (The idle-advancing
    watermark of stream processors, e.g. Flink's idle sources.)
    """

    __slots__ = ("produced_ms", "read_at_s")

    def __init__(self) -> None:
        self.produced_ms = 0
        self.read_at_s = 0.0

    def observe(self, newest_produced_ms: int, wall_s: float) -> None:
        """A batch was read whose newest record was produced at ``newest_produced_ms``."""
        self.produced_ms = max(self.produced_ms, newest_produced_ms)
        self.read_at_s = wall_s

    def now(self, wall_s: float) -> int:
        """Stream time (ms) at wall time ``wall_s``; 0 before anything was read."""
        if not self.produced_ms:
            return 0
        idle_s = max(0.0, wall_s - self.read_at_s)
        return self.produced_ms + int(idle_s * 1000)


def admit(clock: StreamClock, level: RoomLevel, bounds: EventTimeBounds, wall_s: float) -> Verdict:
    """A room stage's verdict on one level event (``pipelines.quality.event_time``).

    The clock follows the stream time the levels agent stamped on the event, never the
    client's clock, so a wrong clock cannot move it; a record without a stamp (written
    before stamping existed) moves it by its own time and is accepted, as it was then.
    """
    stamped = level.stream_time
    if stamped is None:
        clock.observe(level.timestamp, wall_s)
        return "accepted"
    clock.observe(stamped, wall_s)
    return judge_event_time(level.timestamp, clock.now(wall_s), bounds)


def event_time_bounds(settings: Settings) -> EventTimeBounds:
    """The room stages' bounds on event time, from the settings."""
    return EventTimeBounds.of_seconds(settings.event_time_behind_s, settings.event_time_ahead_s)


DEFAULT_BOUNDS = event_time_bounds(Settings())
"""The settings' defaults (``pipelines.config``), for stages built without settings."""
