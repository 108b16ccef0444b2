"""Stream time for judging silence: where the stream is, not where the wall clock is."""

from __future__ import annotations


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
