"""The per-sample loop of :meth:`Engine.feed_batch <pipelines.quality.engine.Engine.feed_batch>`.

It lives apart from :class:`~pipelines.quality.engine.Engine` so that it can be compiled with
the rest of the hot path (see ``setup.py``) while ``Engine`` stays a plain Python class.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Protocol

from pipelines.contracts.level import LevelEvent
from pipelines.contracts.stats import StatsSample
from pipelines.quality.attribution import (
    SFU,
    UplinkChange,
    UplinkCondition,
    ViewLookup,
    upstream_for,
)
from pipelines.quality.participant import advance, mark_stale, new_participant
from pipelines.quality.state import ParticipantState
from pipelines.quality.thresholds import Thresholds


class Counts(Protocol):
    samples: int
    ignored: int
    events: int
    departed: int


def feed_samples(
    samples: Iterable[StatsSample],
    received_at: int | list[int] | None,
    states: MutableMapping[str, ParticipantState],
    th: Thresholds,
    counts: Counts,
    views: ViewLookup | None = None,
    uplinks: list[UplinkChange] | None = None,
) -> list[LevelEvent]:
    """Apply ``samples`` in order to ``states``; events in input order.

    ``received_at``: one clock for all, one value per sample, or None for each sample's own
    timestamp. ``counts`` is updated even when a sample (or the state mapping) raises.
    ``views``: each participant's upstream view (looked up just before its sample is scored),
    None to score everyone alone; ``uplinks``: where publishers' uplink changes go, None not
    to derive them (see ``attribution``). Both apply only to samples that say their topology
    is ``"sfu"``: the others are scored as without them, and tell the room nothing but their
    expiry (the engine sends every expired participant's ``left``; the room hop drops those of
    rooms it never heard of).
    """
    events: list[LevelEvent] = []
    stale_s = th.stale_after_s
    accepted = ignored = emitted = departed = 0
    per_sample = isinstance(received_at, list)
    at = 0
    idle: list[str] = []  # scratch lists lent to advance(), reused sample after sample
    paused: list[str] = []
    try:
        for i, sample in enumerate(samples):
            if received_at is None:
                at = sample.timestamp
            elif per_sample:
                at = received_at[i]  # type: ignore[index]
            else:
                at = received_at  # type: ignore[assignment]
            key = sample.participant_sid
            st = states.get(key)
            if st is None:
                st = new_participant(sample)
            elif sample.seq <= st.seq:
                ignored += 1
                continue
            elif st.level > 0:
                silent = at - st.seen_at
                limit = th.silence_limit_ms(st.interval, sample.timestamp - st.timestamp, stale_s)
                if silent > limit:
                    stale = mark_stale(st, st.timestamp + int(limit))
                    if stale is not None:
                        events.append(stale)
            accepted += 1
            upstream: dict[str, UplinkCondition] | None = None
            sfu = sample.topology == SFU
            if views is not None and sfu:
                view = views(key)
                if view is not None:
                    upstream = upstream_for(view, sample, th)
            event, gone = advance(st, sample, th, idle, paused, upstream, uplinks if sfu else None)
            if event is not None:
                events.append(event)
                emitted += 1
            if gone:
                states.pop(key, None)
                departed += 1
            else:
                st.seen_at = at
                states[key] = st
    finally:
        counts.samples += accepted + ignored
        counts.ignored += ignored
        counts.events += emitted
        counts.departed += departed
    return events
