"""The scoring engine: participant states plus the rules, fed one sample or a batch at a time.

Pure: no clock, no I/O. Callers pass ``received_at`` (their own clock, ms) so staleness and
expiry never compare a client's clock with ours; offline scoring uses the sample timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass

from pipelines.contracts.level import LevelEvent
from pipelines.contracts.stats import StatsSample
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
    """Per-participant scoring over any mapping of states (a dict, or a Faust table)."""

    def __init__(
        self,
        thresholds: Thresholds = DEFAULT_THRESHOLDS,
        states: MutableMapping[str, ParticipantState] | None = None,
        participant_ttl_s: float = 120.0,
    ) -> None:
        self.thresholds = thresholds
        self.states: MutableMapping[str, ParticipantState] = {} if states is None else states
        self.participant_ttl_ms = participant_ttl_s * 1000.0
        self.counts = EngineCounts()

    def feed(self, sample: StatsSample, received_at: int | None = None) -> list[LevelEvent]:
        """Apply one sample; returns 0, 1 or 2 events (a staleness event, then a change)."""
        return self.feed_batch((sample,), received_at)

    def feed_batch(
        self,
        samples: Iterable[StatsSample],
        received_at: int | Sequence[int] | None = None,
    ) -> list[LevelEvent]:
        """Apply many samples of many participants in order; events in input order.

        ``received_at`` is our clock for the whole batch, or one value per sample (a stream
        passes each message's produce time); it defaults to each sample's own timestamp
        (offline scoring).
        """
        if received_at is not None and not isinstance(received_at, int):
            times = list(received_at)
            samples = list(samples)
            if len(times) != len(samples):
                raise ValueError(f"{len(samples)} samples but {len(times)} received_at values")
            return self._feed(samples, times)
        return self._feed(samples, received_at)

    def _feed(
        self, samples: Iterable[StatsSample], received_at: int | list[int] | None
    ) -> list[LevelEvent]:
        return feed_samples(samples, received_at, self.states, self.thresholds, self.counts)

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
