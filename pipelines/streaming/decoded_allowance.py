"""How many decoded states a :class:`~pipelines.streaming.buffered_states.BufferedStates`
keeps: its whole allowance while they are read again, a few while they are not.

A decoded participant state is ~2.7 KB of objects against ~400 bytes of msgpack in the table.
Keeping it decoded saves one decode (~5 us) only if the participant sends again before it is
evicted. When a worker's participants outnumber the allowance and take turns (a join storm;
100,000 participants each sending every few seconds), least-recently-written eviction never
gets that far: every state is evicted before it is read again, and the allowance (~44 MB at
16,384 participants) buys nothing. So the allowance is used only while it pays:

- **At full size**, once ``window`` states were evicted since the last review, the review
  shrinks it to ``floor`` if fewer than ``min_hit_share`` of that many reads were served
  decoded.
- **At the floor**, the caller remembers the keys of recently evicted states (keys only, up to
  ``full`` of them). Once ``window`` states were decoded from bytes, the review grows it back
  to full size if at least ``regrow_share`` of them were among those keys: the full size would
  have served them.

Pure: counts in, a size out; the mapping does the evicting.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class DecodedAllowance:
    """The decoded-state allowance and what it has earned since its last review."""

    full: int
    floor: int
    window: int
    min_hit_share: float = 0.25
    regrow_share: float = 0.5
    limit: int = field(init=False)
    """Decoded states to keep now: ``full`` or ``floor``."""
    hits: int = 0
    """Reads served decoded."""
    evicted: int = 0
    decoded: int = 0
    """Reads of a stored state that had to decode it."""
    would_hit: int = 0
    """Of ``decoded``, those whose key was evicted recently (the full size would have kept it)."""

    def __post_init__(self) -> None:
        if not 0 <= self.floor <= self.full or self.window < 1:
            raise ValueError(
                "need 0 <= floor <= full and window >= 1, got "
                f"full={self.full} floor={self.floor} window={self.window}"
            )
        self.limit = self.full

    @classmethod
    def for_states(cls, full: int) -> DecodedAllowance:
        """The levels agent's and the room stages' sizing: a floor and a review window of a
        sixteenth and a quarter of the full allowance."""
        return cls(full=full, floor=full // 16, window=max(1, full // 4))

    @property
    def shrunk(self) -> bool:
        """Whether the caller should remember the keys it evicts (to see if growing pays)."""
        return self.limit < self.full

    def review(self) -> int:
        """The limit from now on; a review that had its window's worth of evidence starts a new
        window."""
        if not self.shrunk:
            if self.evicted >= self.window:
                if self.hits < self.min_hit_share * self.evicted:
                    self.limit = self.floor
                self._new_window()
        elif self.decoded >= self.window:
            if self.would_hit >= self.regrow_share * self.decoded:
                self.limit = self.full
            self._new_window()
        return self.limit

    def _new_window(self) -> None:
        self.hits = self.evicted = self.decoded = self.would_hit = 0
