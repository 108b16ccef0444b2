"""What a network does to each packet: the lab's pure impairment model (no sockets, no clock).

One :class:`Link` is one direction of one participant's access link (its uplink or its
downlink). ``admit(now, size)`` says when the packet leaves the link, or ``None`` when it is
lost. The order is the one of a real access link: an outage drops everything; random loss
(independent, or in Gilbert-Elliott bursts) drops on the wire; a rate cap serialises packets
through a bounded drop-tail queue; then propagation delay and jitter. Packets never overtake
each other (jitter stretches gaps instead of reordering), as on a single path; netem reorders
only when asked to. The random source is injected, so a seed replays the same decisions.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

DEFAULT_QUEUE_MS = 200.0
"""Drop-tail queue bound of a rate cap, as time to drain at the capped rate. 200 ms is a
modest home-router buffer (bufferbloat studies measure 100 ms to seconds); large enough for
Chrome's delay-based bandwidth estimator (GCC) to see the queue build before losses start."""


class ImpairmentError(ValueError):
    """An impairment setting that makes no sense (negative delay, loss above 1...)."""


@dataclass(frozen=True, slots=True)
class Impairment:
    """What one direction of a link does now. All fields default to a clean link."""

    loss: float = 0.0
    """Probability that a packet is lost, 0..1 (long-run average, also with bursts)."""
    burst: float = 1.0
    """Mean loss burst length in packets; > 1 switches to a Gilbert-Elliott channel."""
    delay_ms: float = 0.0
    """One-way propagation delay added to every packet."""
    jitter_ms: float = 0.0
    """Standard deviation of extra random delay per packet (never below 0, never reorders)."""
    rate_kbps: float | None = None
    """Capacity cap in kbit/s (None: uncapped)."""
    queue_ms: float = DEFAULT_QUEUE_MS
    """Bound of the rate cap's drop-tail queue, as time to drain at ``rate_kbps``."""
    outage: bool = False
    """The link carries nothing at all."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss <= 1.0:
            raise ImpairmentError(f"loss must be within 0..1, got {self.loss}")
        if self.burst < 1.0:
            raise ImpairmentError(f"burst is a mean length in packets (>= 1), got {self.burst}")
        for name in ("delay_ms", "jitter_ms", "queue_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ImpairmentError(f"{name} must be a finite number >= 0, got {value}")
        if self.rate_kbps is not None and not (
            math.isfinite(self.rate_kbps) and self.rate_kbps > 0
        ):
            raise ImpairmentError(f"rate_kbps must be > 0, got {self.rate_kbps}")

    @property
    def clean(self) -> bool:
        return self == CLEAN

    @classmethod
    def from_json(cls, data: Any, where: str = "impairment") -> Impairment:
        """An impairment from its JSON object; unknown keys are an error, not silence."""
        if not isinstance(data, dict):
            raise ImpairmentError(f"{where}: expected an object, got {type(data).__name__}")
        known = {"loss", "burst", "delay_ms", "jitter_ms", "rate_kbps", "queue_ms", "outage"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ImpairmentError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
        try:
            return cls(**data)
        except (TypeError, ImpairmentError) as exc:
            raise ImpairmentError(f"{where}: {exc}") from None

    def as_json(self) -> dict[str, Any]:
        """Only what differs from a clean link, so reports read short."""
        return {k: getattr(self, k) for k in self.__slots__  # type: ignore[attr-defined]
                if getattr(self, k) != getattr(CLEAN, k)}

    def describe(self) -> str:
        if self.outage:
            return "outage"
        parts = []
        if self.loss:
            parts.append(f"{self.loss * 100:g}% loss" + (f" (bursts {self.burst:g})"
                                                         if self.burst > 1 else ""))
        if self.delay_ms:
            parts.append(f"+{self.delay_ms:g} ms")
        if self.jitter_ms:
            parts.append(f"±{self.jitter_ms:g} ms jitter")
        if self.rate_kbps is not None:
            parts.append(f"{self.rate_kbps:g} kbit/s cap")
        return ", ".join(parts) or "clean"


CLEAN = Impairment()


@dataclass(slots=True)
class LinkCounts:
    """What a link did so far, per cause."""

    packets: int = 0
    delivered: int = 0
    lost: int = 0
    """Random loss on the wire (including bursts)."""
    queue_drops: int = 0
    """Tail drops of the rate cap's full queue."""
    outage_drops: int = 0


class Link:
    """One direction of an access link, changeable while packets flow (``set``).

    State kept across changes, as on a real link: the rate cap's backlog, the Gilbert-Elliott
    state and the last departure time (the FIFO order).
    """

    def __init__(self, impairment: Impairment = CLEAN, rng: random.Random | None = None) -> None:
        self.impairment = impairment
        self.rng = rng if rng is not None else random.Random()
        self.counts = LinkCounts()
        self._bad = False
        self._busy_until = 0.0
        self._last_departure = 0.0

    def set(self, impairment: Impairment) -> None:
        self.impairment = impairment

    def admit(self, now: float, size: int) -> float | None:
        """Departure time (seconds, same clock as ``now``) of a packet, or None if dropped."""
        imp = self.impairment
        self.counts.packets += 1
        if imp.outage:
            self.counts.outage_drops += 1
            return None
        if self._lost(imp):
            self.counts.lost += 1
            return None
        leaves = now
        if imp.rate_kbps is not None:
            bytes_per_s = imp.rate_kbps * 125.0
            start = max(now, self._busy_until)
            if (start - now) * 1000.0 > imp.queue_ms:
                self.counts.queue_drops += 1
                return None
            self._busy_until = start + size / bytes_per_s
            leaves = self._busy_until
        leaves += imp.delay_ms / 1000.0
        if imp.jitter_ms:
            leaves += abs(self.rng.gauss(0.0, imp.jitter_ms)) / 1000.0
        leaves = max(leaves, self._last_departure)
        self._last_departure = leaves
        self.counts.delivered += 1
        return leaves

    def _lost(self, imp: Impairment) -> bool:
        """Bernoulli loss, or the simple Gilbert channel (the bad state loses every packet):
        leave bad with r = 1/burst, enter it with p = loss * r / (1 - loss), so the long-run
        loss is ``loss`` and bursts average ``burst`` packets (Gilbert 1960; RFC 3611 4.7.2)."""
        if imp.loss <= 0.0:
            self._bad = False
            return False
        if imp.burst <= 1.0 or imp.loss >= 1.0:
            return self.rng.random() < imp.loss
        leave = 1.0 / imp.burst
        enter = min(1.0, imp.loss * leave / (1.0 - imp.loss))
        if self._bad:
            self._bad = self.rng.random() >= leave
        else:
            self._bad = self.rng.random() < enter
        return self._bad


class Chain:
    """Links in series (the sender's uplink, then the receiver's downlink)."""

    def __init__(self, *links: Link) -> None:
        self.links = links

    def admit(self, now: float, size: int) -> float | None:
        at: float | None = now
        for link in self.links:
            at = link.admit(at, size)
            if at is None:
                return None
        return at

