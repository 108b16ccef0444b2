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

This is the hot path (every sample of every participant), so it works on plain numbers:
windows are tuples, a component's scores are computed and smoothed in one call, and the
detailed stats an event reports are built only when an event is emitted.
"""

from __future__ import annotations

from msgspec.structs import astuple

from pipelines.contracts.level import (
    LEVEL_SCHEMA,
    BandwidthStats,
    ComponentStats,
    LatencyStats,
    LevelEvent,
    LossStats,
    MediaLevels,
)
from pipelines.contracts.stats import CandidatePair, InboundTrack, OutboundTrack, StatsSample
from pipelines.quality.scoring import bandwidth_score, decay, latency_score, loss_score
from pipelines.quality.state import NO_LEVEL, ComponentState, ParticipantState
from pipelines.quality.thresholds import Thresholds
from pipelines.quality.window import RecvWindow, SendWindow, fold_inbound, fold_outbound

DEPARTED_STATES = frozenset({"disconnected", "closed"})
CONNECTION_STATE = "connectionState"
STALENESS = "staleness"

Levels = tuple[int, int, int, int, int]
"""(overall, audio send, audio recv, video send, video recv); NO_LEVEL where absent."""

WindowStats = tuple[
    float | None, float | None, float | None, float | None, float, float, float, float, float
]
"""What an event reports about one component's window, kept as plain numbers until needed:
``(actual, available, demand, fraction, rtt, jitter, bandwidth, loss, latency)``; the last
three are the metric scores, -1.0 where not measured (see :func:`_component_stats`)."""

_BANDWIDTH, _LOSS, _LATENCY = "bandwidth", "fractionLost", "latency"

# Samples are read with one ``astuple`` call (see window.py): this relies on the field order.
_SAMPLE_FIELDS = ("schema", "room_sid", "participant_sid", "region", "timestamp", "seq",
                  "connection_state", "candidate_pair", "outbound", "inbound")  # fmt: skip
_PAIR_FIELDS = ("available_outgoing_bitrate", "available_incoming_bitrate",
                "current_round_trip_time")  # fmt: skip
if (StatsSample.__struct_fields__, CandidatePair.__struct_fields__) != (
    _SAMPLE_FIELDS,
    _PAIR_FIELDS,
):
    raise ImportError(f"StatsSample or CandidatePair fields changed: update {__name__}")


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
    room_sid: str
    region: str
    now: int
    seq: int
    state: str
    cp: CandidatePair | None
    outbound: list[OutboundTrack]
    inbound: list[InboundTrack]
    _, room_sid, _, region, now, seq, state, cp, outbound, inbound = astuple(s)
    before = levels_of(st)
    first = st.seq < 0
    dt_ms = now - st.timestamp
    has_window = not first and 0 < dt_ms <= th.silence_limit_ms(st.interval, dt_ms, th.max_window_s)
    if has_window:
        st.interval = dt_ms if st.interval <= 0 else (3 * st.interval + dt_ms) // 4
    dt_s = dt_ms / 1000.0

    st.outbound, audio_send, video_send = fold_outbound(outbound, st.outbound, has_window, th)
    st.inbound, audio_recv, video_recv = fold_inbound(inbound, st.inbound, has_window)
    st.seq = seq
    st.timestamp = now
    st.stale = False
    st.room_sid = room_sid
    st.region = region

    if state in DEPARTED_STATES:
        st.level = 0
        st.limited_by = CONNECTION_STATE
        return _event(st, seq, now, before, None, departed=True), True

    windows: tuple[WindowStats | None, ...] | None = None
    if state == "connected":
        available_out: float | None = None
        available_in: float | None = None
        cp_rtt: float | None = None
        if cp is not None:
            available_out, available_in, cp_rtt = astuple(cp)
        # Receivers fall back to the worst RTT our own tracks' remote reports measured.
        a_rtt = -1.0 if audio_send is None else audio_send[7]
        v_rtt = -1.0 if video_send is None else video_send[7]
        rtt_fallback = v_rtt if v_rtt > a_rtt else a_rtt
        if cp_rtt is not None:
            rtt_fallback = cp_rtt
        audio_demand = 0.0 if audio_send is None else audio_send[4]

        ws_audio_send = ws_audio_recv = ws_video_send = ws_video_recv = None
        if audio_send is None:
            st.audio_send = None
        else:
            cs = st.audio_send
            if cs is None:
                cs = st.audio_send = ComponentState()
            ws_audio_send = _send(
                cs, audio_send, True, available_out, cp_rtt, 0.0, has_window, dt_s, now, th
            )
        if audio_recv is None:
            st.audio_recv = None
        else:
            cs = st.audio_recv
            if cs is None:
                cs = st.audio_recv = ComponentState()
            ws_audio_recv = _recv(
                cs, audio_recv, True, available_in, rtt_fallback, has_window, dt_s, now, th
            )
        if video_send is None:
            st.video_send = None
        else:
            cs = st.video_send
            if cs is None:
                cs = st.video_send = ComponentState()
            ws_video_send = _send(
                cs, video_send, False, available_out, cp_rtt, audio_demand, has_window, dt_s,
                now, th,
            )  # fmt: skip
        if video_recv is None:
            st.video_recv = None
        else:
            cs = st.video_recv
            if cs is None:
                cs = st.video_recv = ComponentState()
            ws_video_recv = _recv(
                cs, video_recv, False, available_in, rtt_fallback, has_window, dt_s, now, th
            )
        windows = (ws_audio_send, ws_audio_recv, ws_video_send, ws_video_recv)
        _overall(st)
    else:
        st.level = 0
        st.limited_by = CONNECTION_STATE

    if not first and levels_of(st) == before:
        return None, False
    stats = None
    if windows is not None:
        stats = tuple(None if w is None else _component_stats(w, th) for w in windows)
    return _event(st, seq, now, before, stats, departed=False), False


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


def _send(
    cs: ComponentState,
    w: SendWindow,
    audio: bool,
    available: float | None,
    cp_rtt: float | None,
    audio_demand: float,
    has_window: bool,
    dt_s: float,
    now_ms: int,
    th: Thresholds,
) -> WindowStats:
    """Score and smooth one send component; returns its window's stats."""
    deltas, sent_bytes, lost, loss_packets, w_demand, nominal, limited, rtt, jitter, w_fraction = w
    actual = sent_bytes * 8.0 / dt_s if has_window and deltas else None
    if limited:
        # The encoder follows the estimate down: score against what it wanted before, or, if
        # it was limited from the start, against the nominal bitrate of its resolution.
        remembered = cs.reference
        if remembered > 0.0:
            remembered = decay(remembered, dt_s, th.demand_memory_half_life_s)
        else:
            remembered = nominal
        cs.reference = max(remembered, w_demand)
        demand = cs.reference
    else:
        cs.reference = w_demand
        demand = w_demand
    capacity: float | None = None
    if available is not None:
        # Audio goes first on a shared transport; video gets what is left.
        capacity = available if audio else max(available - audio_demand, 0.0)
    elif limited and actual is not None:
        capacity = actual
    fraction = None
    if loss_packets >= th.loss_min_packets:
        fraction = min(lost / loss_packets, 1.0)
    elif w_fraction >= 0.0:
        fraction = w_fraction
    if rtt < 0.0 and cp_rtt is not None:
        rtt = cp_rtt
    weight = th.loss_weight_audio if audio else th.loss_weight_video
    prefix = "audio.send." if audio else "video.send."
    return _score_and_smooth(
        cs, prefix, actual, available, capacity, demand, fraction, rtt, jitter, weight, now_ms, th
    )


def _recv(
    cs: ComponentState,
    w: RecvWindow,
    audio: bool,
    available_in: float | None,
    rtt: float,
    has_window: bool,
    dt_s: float,
    now_ms: int,
    th: Thresholds,
) -> WindowStats:
    """Score and smooth one receive component; returns its window's stats."""
    deltas, received_bytes, lost, loss_packets, expected, expected_all, jitter = w
    actual = capacity = demand = available = None
    fraction = None
    if loss_packets >= th.loss_min_packets:
        fraction = min(lost / loss_packets, 1.0)
    if has_window and deltas:
        actual = received_bytes * 8.0 / dt_s
        # Received bitrate is bursty (key frames): smooth it over ~2 windows before comparing.
        rate = actual if cs.rate < 0.0 else 0.5 * (cs.rate + actual)
        cs.rate = rate
        available = available_in
        capacity = rate if available is None else min(rate, available)
        if expected_all and expected > 0.0:
            demand = expected
        elif not audio:
            # No expectedBitrate: score only troubled windows, against the rate of clean ones.
            remembered = decay(cs.reference, dt_s, th.demand_memory_half_life_s)
            if fraction is not None and fraction >= th.recv_trouble_loss:
                cs.reference = remembered
                demand = remembered if remembered > 0.0 else None
            else:
                cs.reference = max(remembered, rate)
    weight = th.loss_weight_audio if audio else th.loss_weight_video
    prefix = "audio.recv." if audio else "video.recv."
    return _score_and_smooth(
        cs, prefix, actual, available, capacity, demand, fraction, rtt, jitter, weight, now_ms, th
    )


def _score_and_smooth(
    cs: ComponentState,
    prefix: str,
    actual: float | None,
    available: float | None,
    capacity: float | None,
    demand: float | None,
    fraction: float | None,
    rtt: float,
    jitter: float,
    loss_weight: float,
    now_ms: int,
    th: Thresholds,
) -> WindowStats:
    """The component's score is its worst metric; then the smoothing rule.

    Smoothing: worse news at once; better news only once it held for the dwell, above the
    next floor + margin.
    """
    score, metric = 100.0, ""
    bandwidth = loss = latency = -1.0
    if capacity is not None and demand is not None:
        score = bandwidth = bandwidth_score(capacity, demand, th)
        metric = _BANDWIDTH
    if fraction is not None:
        loss = loss_score(fraction, loss_weight)
        if loss < score:
            score, metric = loss, _LOSS
    if rtt >= 0.0 or jitter >= 0.0:
        latency = latency_score(0.0 if rtt < 0.0 else rtt, 0.0 if jitter < 0.0 else jitter, th)
        if latency < score:
            score, metric = latency, _LATENCY
    window = (actual, available, demand, fraction, rtt, jitter, bandwidth, loss, latency)

    f5, f4, f3, f2 = th.level_floors  # Thresholds.level_of, inlined: it runs for every window
    raw = 5 if score >= f5 else 4 if score >= f4 else 3 if score >= f3 else 2 if score >= f2 else 1
    level = cs.level
    if level == NO_LEVEL or raw <= level:
        cs.level = raw
        cs.limited_by = prefix + metric if raw < 5 else ""
        cs.up_since = -1
        return window
    candidate = th.level_of(score - th.upgrade_margin)
    if candidate <= level:
        cs.up_since = -1
        return window
    if cs.up_since < 0:
        cs.up_since = now_ms
        cs.up_target = candidate
    elif candidate < cs.up_target:
        cs.up_target = candidate
    if now_ms - cs.up_since >= th.upgrade_dwell_s * 1000.0:
        cs.level = cs.up_target
        if cs.level == 5:
            cs.limited_by = ""
        elif metric:  # still held below 5: name what limits it now, else keep the old reason
            cs.limited_by = prefix + metric
        cs.up_since = -1
    return window


def _component_stats(window: WindowStats, th: Thresholds) -> ComponentStats:
    """The detailed stats of one component's window, as a level event reports them."""
    actual, available, demand, fraction, rtt, jitter, bandwidth_sc, loss_sc, latency_sc = window
    bandwidth = loss = latency = None
    if bandwidth_sc >= 0.0:
        bandwidth = BandwidthStats(
            level=th.level_of(bandwidth_sc), actual=actual, available=available, demand=demand
        )
    elif actual is not None:
        bandwidth = BandwidthStats(level=5, actual=actual, available=available, demand=demand)
    if loss_sc >= 0.0:
        loss = LossStats(level=th.level_of(loss_sc), fraction_lost=fraction)
    if latency_sc >= 0.0:
        latency = LatencyStats(
            level=th.level_of(latency_sc),
            rtt=rtt if rtt >= 0.0 else None,
            jitter=jitter if jitter >= 0.0 else None,
        )
    return ComponentStats(bandwidth=bandwidth, fraction_lost=loss, latency=latency)


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
    stats: tuple[ComponentStats | None, ...] | None,
    *,
    departed: bool,
    suffix: str = "",
) -> LevelEvent:
    audio_send = audio_recv = video_send = video_recv = None
    if stats is not None:
        audio_send, audio_recv, video_send, video_recv = stats
    event_id = f"{st.participant_sid}:{seq}" + (f":{suffix}" if suffix else "")
    return LevelEvent(
        schema=LEVEL_SCHEMA,  # type: ignore[arg-type]  # a str constant of the Literal
        event_id=event_id,
        room_sid=st.room_sid,
        participant_sid=st.participant_sid,
        region=st.region,
        timestamp=timestamp,
        level=st.level,
        previous_level=None if before[0] == NO_LEVEL else before[0],
        audio=_media(st.audio_send, st.audio_recv, audio_send, audio_recv),
        video=_media(st.video_send, st.video_recv, video_send, video_recv),
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
