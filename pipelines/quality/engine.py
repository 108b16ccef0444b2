"""The scoring engine: participant states plus the rules, fed one sample or a batch at a time.

Pure: no clock, no I/O. Callers pass ``received_at`` (their own clock, ms) so staleness and
expiry never compare a client's clock with ours; offline scoring uses the sample timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass

from pipelines.contracts.level import LevelEvent
from pipelines.contracts.stats import StatsSample
from pipelines.quality.attribution import (
    UplinkChange,
    UplinkCondition,
    UpstreamView,
    ViewLookup,
    uplinks_of,
)
from pipelines.quality.feed import feed_samples
from pipelines.quality.participant import expire, mark_stale
from pipelines.quality.state import ParticipantState
from pipelines.quality.thresholds import DEFAULT_THRESHOLDS, Thresholds


@dataclass(slots=True)
class EngineCounts:
    """What the engine has seen, for metrics and summaries."""

    samples: int = 0
    ignored: int = 0
    """Duplicates and out-of-order samples (seq not newer than the last accepted)."""
    events: int = 0
    departed: int = 0


class Engine:
    """Per-participant scoring over any mapping of states (a dict, or a Faust table).

    Room-aware attribution (``attribution``, docs/levels.md "Whose network") is opt-in on
    both sides: ``uplinks=True`` derives each publisher's uplink conditions, collected until
    :meth:`take_uplink_changes`; a ``view``/``views`` argument scores a subscriber with the
    upstream conditions its view holds. Without them, scoring is exactly what it was.
    """

    def __init__(
        self,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        states: MutableMapping[str, ParticipantState] | None = None,
        participant_ttl_s: float = 120.0,
        uplinks: bool = False,
    ) -> None:
        self.thresholds = thresholds
        self.states: MutableMapping[str, ParticipantState] = {} if states is None else states
        self.participant_ttl_ms = participant_ttl_s * 1000.0
        self.counts = EngineCounts()
        self.uplink_changes: list[UplinkChange] | None = [] if uplinks else None
        """Uplink changes not yet taken; None while the engine derives none."""

    def feed(
        self,
        sample: StatsSample,
        received_at: int | None = None,
        view: UpstreamView | None = None,
    ) -> list[LevelEvent]:
        """Apply one sample; returns 0, 1 or 2 events (a staleness event, then a change).
        ``view``: the participant's upstream view, if it has one."""
        views = None if view is None else {sample.participant_sid: view}.get
        return self.feed_batch((sample,), received_at, views)

    def feed_batch(
        self,
        samples: Iterable[StatsSample],
        received_at: int | Sequence[int] | None = None,
        views: ViewLookup | None = None,
    ) -> list[LevelEvent]:
        """Apply many samples of many participants in order; events in input order.

        ``received_at`` is our clock for the whole batch, or one value per sample (a stream
        passes each message's produce time); it defaults to each sample's own timestamp
        (offline scoring). ``views`` finds a participant's upstream view by its sid (a
        mapping's ``get``), called just before each of its samples is scored.
        """
        if received_at is not None and not isinstance(received_at, int):
            times = list(received_at)
            samples = list(samples)
            if len(times) != len(samples):
                raise ValueError(f"{len(samples)} samples but {len(times)} received_at values")
            return self._feed(samples, times, views)
        return self._feed(samples, received_at, views)

    def _feed(
        self,
        samples: Iterable[StatsSample],
        received_at: int | list[int] | None,
        views: ViewLookup | None = None,
    ) -> list[LevelEvent]:
        return feed_samples(
            samples,
            received_at,
            self.states,
            self.thresholds,
            self.counts,
            views,
            self.uplink_changes,
        )

    def take_uplink_changes(self) -> list[UplinkChange]:
        """The uplink changes since the last call, in the order their samples were scored
        (empty unless the engine was made with ``uplinks=True``): what a pipeline forwards
        to the room (``attribution.RoomViews``)."""
        if not self.uplink_changes:
            return []
        changes = self.uplink_changes[:]
        self.uplink_changes.clear()
        return changes

    def uplinks_of(self, participant_sid: str) -> list[UplinkCondition]:
        """A publisher's current uplink conditions (empty if unknown)."""
        st = self.states.get(participant_sid)
        return [] if st is None else uplinks_of(st)

    def sweep(self, now: int) -> list[LevelEvent]:
        """Mark silent participants stale (level 0) and expire those silent past the TTL.

        Call it periodically with the same clock as ``received_at``. A states mapping may
        offer ``scan()``: every key with its state, or with a view holding just ``seen_at``
        and ``interval`` (see ``liveness.py``), so that the quiet majority is not decoded.
        """
        th = self.thresholds
        events: list[LevelEvent] = []
        scan = getattr(self.states, "scan", None)
        for key, seen in scan() if scan is not None else list(self.states.items()):
            silent = now - seen.seen_at
            stale_ms = th.silence_limit_ms(seen.interval, 0, th.stale_after_s)
            if silent <= stale_ms:
                continue
            expired = silent > self.participant_ttl_ms
            if not expired and seen.stale:
                continue  # marked before: nothing to do until it sends or expires
            st = seen if isinstance(seen, ParticipantState) else self.states[key]
            if expired:
                events.append(expire(st, st.timestamp + int(silent)))
                if self.uplink_changes is not None:  # its tracks go with it (attribution)
                    self.uplink_changes.append(
                        UplinkChange("left", st.room_sid, st.participant_sid, events[-1].timestamp)
                    )
                del self.states[key]
                self.counts.departed += 1
            else:
                # Written back even without an event (level already 0): a mapping that keeps
                # states encoded (ChangelogStates) holds only what is written.
                stale = mark_stale(st, st.timestamp + int(stale_ms))
                if stale is not None:
                    events.append(stale)
                self.states[key] = st
        self.counts.events += len(events)
        return events
