"""Advance one participant by one sample: windows -> metric scores -> smoothed levels -> event.

The rules, in the order they apply:

1. ``disconnected``/``closed``: the participant left; a final level-0 event, state is dropped.
2. Any other state but ``connected`` (reconnecting, failed, new, connecting): level 0 at
   once, no smoothing; counters still re-baseline so recovery needs no extra sample.
3. Connected: each present component (audio/video x send/recv) scores bandwidth, loss and
   latency 0..100; its raw level is the worst of the three; the smoothed level drops at once
   and rises only after :attr:`Thresholds.upgrade_dwell_s` above the next floor + margin.
4. Overall = min of present components, 5 with none.
5. An event is produced when the overall or any component level (or its presence) changes,
   and always for the first sample; it names the metric holding the level down.
"""

from __future__ import annotations

from pipelines.contracts.level import (
    LEVEL_SCHEMA,
    BandwidthStats,
    ComponentStats,
    LatencyStats,
    LevelEvent,
    LossStats,
    MediaLevels,
)
from pipelines.contracts.stats import CandidatePair, StatsSample
from pipelines.quality.scoring import bandwidth_score, decay, latency_score, loss_score
from pipelines.quality.state import NO_LEVEL, ComponentState, ParticipantState
from pipelines.quality.thresholds import Thresholds
from pipelines.quality.window import ComponentWindow, add_inbound, add_outbound

DEPARTED_STATES = frozenset({"disconnected", "closed"})
CONNECTION_STATE = "connectionState"
STALENESS = "staleness"

Levels = tuple[int, int, int, int, int]
"""(overall, audio send, audio recv, video send, video recv); NO_LEVEL where absent."""


def new_participant(sample: StatsSample) -> ParticipantState:
    """Empty state for the participant a sample belongs to."""
    return ParticipantState(sample.room_sid, sample.participant_sid, sample.region)


def levels_of(st: ParticipantState) -> Levels:
    """The levels an event would report for this state."""
    return (
        st.level,
        NO_LEVEL if st.audio_send is None else st.audio_send.level,
        NO_LEVEL if st.audio_recv is None else st.audio_recv.level,
        NO_LEVEL if st.video_send is None else st.video_send.level,
        NO_LEVEL if st.video_recv is None else st.video_recv.level,
    )


def advance(st: ParticipantState, s: StatsSample, th: Thresholds) -> tuple[LevelEvent | None, bool]:
    """Apply sample ``s`` (whose seq is newer than ``st.seq``) to ``st``.

    Returns the change event (or None) and whether the participant departed, in which case the
    caller drops the state.
    """
    before = levels_of(st)
    first = st.seq < 0
    dt_ms = s.timestamp - st.timestamp
    has_window = not first and 0 < dt_ms <= th.max_window_s * 1000.0
    dt_s = dt_ms / 1000.0

    send = (ComponentWindow(), ComponentWindow())
    recv = (ComponentWindow(), ComponentWindow())
    st.outbound = add_outbound(send, s.outbound, st.outbound, has_window, th)
    st.inbound = add_inbound(recv, s.inbound, st.inbound, has_window)
    st.seq = s.seq
    st.timestamp = s.timestamp
    st.stale = False
    st.room_sid = s.room_sid
    st.region = s.region

    state = s.connection_state
    if state in DEPARTED_STATES:
        st.level = 0
        st.limited_by = CONNECTION_STATE
        return _event(st, s.seq, s.timestamp, before, None, departed=True), True

    windows: dict[str, WindowScore] | None = None
    if state == "connected":
        windows = {}
        cp = s.candidate_pair
        audio_demand = send[0].demand if send[0].present else 0.0
        for name, w, is_send, kind in (
            ("audio_send", send[0], True, "audio"),
            ("audio_recv", recv[0], False, "audio"),
            ("video_send", send[1], True, "video"),
            ("video_recv", recv[1], False, "video"),
        ):
            if not w.present:
                setattr(st, name, None)
                continue
            cs = getattr(st, name)
            if cs is None:
                cs = ComponentState()
                setattr(st, name, cs)
            if is_send:
                window_stats = _score_send(cs, w, kind, cp, audio_demand, has_window, dt_s, th)
            else:
                rtt_fallback = max(send[0].rtt, send[1].rtt)
                window_stats = _score_recv(cs, w, kind, cp, rtt_fallback, has_window, dt_s, th)
            windows[name] = window_stats
            _smooth(cs, window_stats, kind, is_send, s.timestamp, th)
        _overall(st)
    else:
        st.level = 0
        st.limited_by = CONNECTION_STATE

    after = levels_of(st)
    if not first and after == before:
        return None, False
    stats = None if windows is None else {k: w.stats(th) for k, w in windows.items()}
    return _event(st, s.seq, s.timestamp, before, stats, departed=False), False


def mark_stale(st: ParticipantState, at_ms: int) -> LevelEvent | None:
    """No sample for too long: level 0 until the next sample (event only on the change)."""
    if st.stale:
        return None
    before = levels_of(st)
    st.stale = True
    st.level = 0
    st.limited_by = STALENESS
    if levels_of(st) == before:
        return None
    return _event(st, st.seq, at_ms, before, None, departed=False, suffix="stale")


def expire(st: ParticipantState, at_ms: int) -> LevelEvent:
    """Silent past the TTL: the participant is gone; a final event before dropping state."""
    before = levels_of(st)
    st.level = 0
    st.limited_by = STALENESS
    return _event(st, st.seq, at_ms, before, None, departed=True, suffix="expired")


class WindowScore:
    """One component's window: raw metrics and scores (-1 where not measured).

    Kept as plain floats because most windows change nothing: the detailed stats an event
    reports are built from them only when an event is emitted (:meth:`stats`).
    """

    __slots__ = (
        "actual",
        "available",
        "bandwidth",
        "demand",
        "fraction",
        "jitter",
        "latency",
        "loss",
        "metric",
        "rtt",
        "score",
    )

    def __init__(
        self,
        actual: float | None,
        available: float | None,
        capacity: float | None,
        demand: float | None,
        fraction: float | None,
        rtt: float,
        jitter: float,
        loss_weight: float,
        th: Thresholds,
    ) -> None:
        self.actual = actual
        self.available = available
        self.demand = demand
        self.fraction = fraction
        self.rtt = rtt
        self.jitter = jitter
        worst, metric = 100.0, ""
        self.bandwidth = self.loss = self.latency = -1.0
        if capacity is not None and demand is not None:
            worst = self.bandwidth = bandwidth_score(capacity, demand, th)
            metric = "bandwidth"
        if fraction is not None:
            self.loss = loss_score(fraction, loss_weight)
            if self.loss < worst:
                worst, metric = self.loss, "fractionLost"
        if rtt >= 0.0 or jitter >= 0.0:
            self.latency = latency_score(max(rtt, 0.0), max(jitter, 0.0), th)
            if self.latency < worst:
                worst, metric = self.latency, "latency"
        self.score = worst
        self.metric = metric

    def stats(self, th: Thresholds) -> ComponentStats:
        """The detailed stats of this window, as a level event reports them."""
        bandwidth = loss = latency = None
        if self.bandwidth >= 0.0:
            bandwidth = BandwidthStats(
                level=th.level_of(self.bandwidth),
                actual=self.actual,
                available=self.available,
                demand=self.demand,
            )
        elif self.actual is not None:
            bandwidth = BandwidthStats(
                level=5, actual=self.actual, available=self.available, demand=self.demand
            )
        if self.loss >= 0.0:
            loss = LossStats(level=th.level_of(self.loss), fraction_lost=self.fraction)
        if self.latency >= 0.0:
            latency = LatencyStats(
                level=th.level_of(self.latency),
                rtt=self.rtt if self.rtt >= 0.0 else None,
                jitter=self.jitter if self.jitter >= 0.0 else None,
            )
        return ComponentStats(bandwidth=bandwidth, fraction_lost=loss, latency=latency)


def _score_send(
    cs: ComponentState,
    w: ComponentWindow,
    kind: str,
    cp: CandidatePair | None,
    audio_demand: float,
    has_window: bool,
    dt_s: float,
    th: Thresholds,
) -> WindowScore:
    actual = w.bytes * 8.0 / dt_s if has_window and w.deltas else None
    available = None if cp is None else cp.available_outgoing_bitrate
    if w.limited:
        # The encoder follows the estimate down: score against what it wanted before, or, if
        # it was limited from the start, against the nominal bitrate of its resolution.
        remembered = cs.reference
        if remembered > 0.0:
            remembered = decay(remembered, dt_s, th.demand_memory_half_life_s)
        else:
            remembered = w.nominal
        cs.reference = max(remembered, w.demand)
        demand = cs.reference
    else:
        cs.reference = w.demand
        demand = w.demand
    capacity: float | None = None
    if available is not None:
        # Audio goes first on a shared transport; video gets what is left.
        capacity = available if kind == "audio" else max(available - audio_demand, 0.0)
    elif w.limited and actual is not None:
        capacity = actual
    fraction = None
    if w.loss_packets >= th.loss_min_packets:
        fraction = min(w.lost / w.loss_packets, 1.0)
    elif w.fraction_lost >= 0.0:
        fraction = w.fraction_lost
    rtt = w.rtt
    if rtt < 0.0 and cp is not None and cp.current_round_trip_time is not None:
        rtt = cp.current_round_trip_time
    weight = th.loss_weight_audio if kind == "audio" else th.loss_weight_video
    return WindowScore(actual, available, capacity, demand, fraction, rtt, w.jitter, weight, th)


def _score_recv(
    cs: ComponentState,
    w: ComponentWindow,
    kind: str,
    cp: CandidatePair | None,
    rtt_fallback: float,
    has_window: bool,
    dt_s: float,
    th: Thresholds,
) -> WindowScore:
    actual = capacity = demand = available = None
    if has_window and w.deltas:
        actual = w.bytes * 8.0 / dt_s
        # Received bitrate is bursty (key frames): smooth it over ~2 windows before comparing.
        cs.rate = actual if cs.rate < 0.0 else 0.5 * (cs.rate + actual)
        available = None if cp is None else cp.available_incoming_bitrate
        capacity = cs.rate if available is None else min(cs.rate, available)
        if w.expected_all and w.expected > 0.0:
            demand = w.expected
        elif kind == "video":
            # No expectedBitrate: what was received before the trouble, slowly forgotten.
            cs.reference = max(decay(cs.reference, dt_s, th.demand_memory_half_life_s), cs.rate)
            demand = cs.reference
    fraction = None
    if w.loss_packets >= th.loss_min_packets:
        fraction = min(w.lost / w.loss_packets, 1.0)
    rtt = rtt_fallback
    if cp is not None and cp.current_round_trip_time is not None:
        rtt = cp.current_round_trip_time
    weight = th.loss_weight_audio if kind == "audio" else th.loss_weight_video
    return WindowScore(actual, available, capacity, demand, fraction, rtt, w.jitter, weight, th)


def _smooth(
    cs: ComponentState,
    window: WindowScore,
    kind: str,
    is_send: bool,
    now_ms: int,
    th: Thresholds,
) -> None:
    """Worse news at once; better news only once it held for the dwell, above floor + margin."""
    raw = th.level_of(window.score)
    limited_by = f"{kind}.{'send' if is_send else 'recv'}.{window.metric}" if raw < 5 else ""
    if cs.level == NO_LEVEL or raw <= cs.level:
        cs.level = raw
        cs.limited_by = limited_by
        cs.up_since = -1
        return
    candidate = th.level_of(window.score - th.upgrade_margin)
    if candidate <= cs.level:
        cs.up_since = -1
        return
    if cs.up_since < 0:
        cs.up_since = now_ms
        cs.up_target = candidate
    elif candidate < cs.up_target:
        cs.up_target = candidate
    if now_ms - cs.up_since >= th.upgrade_dwell_s * 1000.0:
        cs.level = cs.up_target
        cs.limited_by = limited_by
        cs.up_since = -1


def _overall(st: ParticipantState) -> None:
    level, limited_by = 5, ""
    for cs in (st.audio_send, st.audio_recv, st.video_send, st.video_recv):
        if cs is not None and cs.level < level:
            level, limited_by = cs.level, cs.limited_by
    st.level = level
    st.limited_by = limited_by or None


def _event(
    st: ParticipantState,
    seq: int,
    timestamp: int,
    before: Levels,
    stats: dict[str, ComponentStats] | None,
    *,
    departed: bool,
    suffix: str = "",
) -> LevelEvent:
    stats = stats or {}
    event_id = f"{st.participant_sid}:{seq}" + (f":{suffix}" if suffix else "")
    return LevelEvent(
        schema=LEVEL_SCHEMA,
        event_id=event_id,
        room_sid=st.room_sid,
        participant_sid=st.participant_sid,
        region=st.region,
        timestamp=timestamp,
        level=st.level,
        previous_level=None if before[0] == NO_LEVEL else before[0],
        audio=_media(
            st.audio_send, st.audio_recv, stats.get("audio_send"), stats.get("audio_recv")
        ),
        video=_media(
            st.video_send, st.video_recv, stats.get("video_send"), stats.get("video_recv")
        ),
        limited_by=st.limited_by if st.level < 5 else None,
        departed=departed,
    )


def _media(
    send: ComponentState | None,
    recv: ComponentState | None,
    send_stats: ComponentStats | None,
    recv_stats: ComponentStats | None,
) -> MediaLevels:
    return MediaLevels(
        send=None if send is None else send.level,
        recv=None if recv is None else recv.level,
        send_stats=send_stats if send is not None else None,
        recv_stats=recv_stats if recv is not None else None,
    )
