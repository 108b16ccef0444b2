"""Advance one participant by one sample: windows -> metric scores -> smoothed levels -> event.

The rules, in the order they apply:

1. ``disconnected``/``closed``: the participant left; a final level-0 event, state is dropped.
2. Any other state but ``connected`` (reconnecting, failed, new, connecting): level 0 at
   once, no smoothing; counters still re-baseline so recovery needs no extra sample.
3. Connected: each present component (audio/video x send/recv) scores its packets (delay and
   loss effects added, E-model style; loss from a packet-count pool, at the lower bound of
   what it proves) and its bandwidth against demand (not during the call-start ramp-up);
   its raw level is the worse of the two; the smoothed level drops at once and rises one
   level per :attr:`Thresholds.upgrade_dwell_s` above the next floor + margin. Windows in
   which its unmuted tracks move no packets prove nothing and change nothing; quiet past
   :attr:`Thresholds.stall_after_s` is a stall, level 0 (receiving: only when every
   subscribed track is quiet). The first window after a quiet spell adds no loss.
4. Overall = min of present components (a stalled one reads 0), 5 with none.
5. An event is produced when the overall or any component level (or its presence) changes,
   and always for the first sample; it names the metric holding the level down.

This is the hot path (every sample of every participant), so it works on plain numbers:
windows are tuples, a component's scores are computed and smoothed in one call, and the
detailed stats an event reports are built only when an event is emitted.
"""

from __future__ import annotations

from math import exp
from typing import Final

from msgspec.structs import astuple

from pipelines.contracts.level import (
    LEVEL_SCHEMA,
    BandwidthStats,
    Cause,
    ComponentStats,
    LatencyStats,
    LevelEvent,
    LossStats,
    MediaLevels,
)
from pipelines.contracts.stats import CandidatePair, InboundTrack, OutboundTrack, StatsSample
from pipelines.quality.attribution import (
    UplinkChange,
    UplinkCondition,
    adjust_recv,
    derive_uplinks,
    upstream_cause,
)
from pipelines.quality.scoring import (
    bandwidth_score,
    decay,
    delay_effect,
    loss_effect,
    lower_loss_bound,
)
from pipelines.quality.state import NO_LEVEL, ComponentState, ParticipantState
from pipelines.quality.thresholds import Thresholds
from pipelines.quality.window import RecvWindow, SendWindow, fold_inbound, fold_outbound

DEPARTED_STATES = frozenset({"disconnected", "closed"})
CONNECTION_STATE = "connectionState"
STALENESS = "staleness"

Levels = tuple[int, int, int, int, int]
"""(overall, audio send, audio recv, video send, video recv); NO_LEVEL where absent."""

WindowStats = tuple[
    float | None, float | None, float | None, float, float, float, float, float, float
]
"""What an event reports about one component's window, kept as plain numbers until needed:
``(actual, available, demand, fraction, rtt, jitter, bandwidth, loss, latency)``; the last
three are the metric scores, -1.0 where not measured (see :func:`_component_stats`)."""

_BANDWIDTH: Final = "bandwidth"
_LOSS: Final = "fractionLost"
_LATENCY: Final = "latency"
_STALLED: Final = "stalled"
# How a window's packets flowed, for one component (see _flow). Final: compiled, a constant.
_FLOWING: Final = 0
_QUIET: Final = 1
_RESUMED: Final = 2
_FLOW_BITS: Final = 3
_LOOKED: Final = 4
"""Set by _look when it read the component; masked off with _FLOW_BITS."""
_POOL_MASK: Final = 0xFFFFFFFF
"""``ComponentState.loss_pool``: packets (tenths) below bit 32, lost (thousandths) above."""
_NO_EVIDENCE: Final = -2
"""``quiet_since`` of a component whose tracks are all muted (or have no delta)."""

# Samples are read with one ``astuple`` call (see window.py): this relies on the field order.
_SAMPLE_FIELDS = ("schema", "room_sid", "participant_sid", "region", "timestamp", "seq",
                  "connection_state", "candidate_pair", "outbound", "inbound",
                  "topology")  # fmt: skip
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


def advance(
    st: ParticipantState,
    s: StatsSample,
    th: Thresholds,
    idle: list[str] | None = None,
    paused: list[str] | None = None,
    upstream: dict[str, UplinkCondition] | None = None,
    uplinks: list[UplinkChange] | None = None,
) -> tuple[LevelEvent | None, bool]:
    """Apply sample ``s`` (whose seq is newer than ``st.seq``) to ``st``.

    Returns the change event (or None) and whether the participant departed, in which case the
    caller drops the state. ``upstream``: the paired publishers' uplink conditions to take out
    of what this participant receives (``attribution.upstream_for``), None to score it alone.
    ``uplinks``: where to append this participant's own uplink changes, None not to derive
    them (``attribution.derive_uplinks``).
    """
    room_sid: str
    region: str
    now: int
    seq: int
    state: str
    cp: CandidatePair | None
    outbound: list[OutboundTrack]
    inbound: list[InboundTrack]
    _, room_sid, _, region, now, seq, state, cp, outbound, inbound, _ = astuple(s)
    before = levels_of(st)
    first = st.seq < 0
    window_start = st.timestamp
    dt_ms = now - window_start
    has_window = not first and 0 < dt_ms <= th.silence_limit_ms(st.interval, dt_ms, th.max_window_s)
    if has_window:
        st.interval = dt_ms if st.interval <= 0 else (3 * st.interval + dt_ms) // 4
    dt_s = dt_ms / 1000.0

    idle_before = st.idle
    paused_before = st.paused if idle_before else ()  # a paused track was idle last window
    # Scratch lists a caller may lend (feed_samples does, once per batch): a sample rarely
    # has an idle track, and two fresh lists per sample are two more objects for the GC.
    if idle is None:
        idle = []
    else:
        idle.clear()
    if paused is None:
        paused = []
    else:
        paused.clear()
    inbound_before = st.inbound
    st.outbound, audio_send, video_send = fold_outbound(
        outbound, st.outbound, has_window, th, idle_before, paused_before, idle, paused
    )
    st.inbound, audio_recv, video_recv = fold_inbound(
        inbound, inbound_before, has_window, idle_before, paused_before, idle, paused
    )
    evidenced: list[str] | None = None  # paired tracks the adjustment took something off
    if upstream is not None:
        evidenced = []
        audio_recv, video_recv = adjust_recv(
            inbound, inbound_before, has_window, paused_before, audio_recv, video_recv, upstream,
            evidenced,
        )  # fmt: skip
    if idle or idle_before:
        st.idle = tuple(idle)
    if paused or paused_before:
        st.paused = tuple(paused)
    st.seq = seq
    st.timestamp = now
    st.stale = False
    st.room_sid = room_sid
    st.region = region

    if uplinks is not None and first:
        uplinks.append(UplinkChange("joined", room_sid, st.participant_sid, now))
    cause_before = cause = st.cause  # ``cause``: kept in a local, not read back from ``st``
    if state in DEPARTED_STATES:
        st.level = 0
        st.limited_by = CONNECTION_STATE
        st.cause = None
        if uplinks is not None:
            uplinks.append(UplinkChange("left", room_sid, st.participant_sid, now))
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
        # Components present in this sample (created on their first track), and how their
        # packets flowed; stalls are settled before scoring, so a resumed component is scored
        # from the level it held, not from 0.
        a_send, a_recv, v_send, v_recv = st.audio_send, st.audio_recv, st.video_send, st.video_recv
        if (a_send is None) != (audio_send is None):
            a_send = st.audio_send = _component(audio_send is not None, True)
        if (a_recv is None) != (audio_recv is None):
            a_recv = st.audio_recv = _component(audio_recv is not None, False)
        if (v_send is None) != (video_send is None):
            v_send = st.video_send = _component(video_send is not None, True)
        if (v_recv is None) != (video_recv is None):
            v_recv = st.video_recv = _component(video_recv is not None, False)
        # The usual sample: nothing was quiet and every component moved packets, which says
        # all there is to say without reading a component (``st.quiet`` is the summary).
        f_a_send = f_a_recv = f_v_send = f_v_recv = _FLOWING
        quiet_before = st.quiet
        if a_send is not None and audio_send is not None:
            f_a_send = _look(a_send, audio_send[10], quiet_before, has_window, window_start)
        if a_recv is not None and audio_recv is not None:
            f_a_recv = _look(a_recv, audio_recv[7], quiet_before, has_window, window_start)
        if v_send is not None and video_send is not None:
            f_v_send = _look(v_send, video_send[10], quiet_before, has_window, window_start)
        if v_recv is not None and video_recv is not None:
            f_v_recv = _look(v_recv, video_recv[7], quiet_before, has_window, window_start)
        looked = ((f_a_send | f_a_recv | f_v_send | f_v_recv) & _LOOKED) != 0
        f_a_send, f_a_recv = f_a_send & _FLOW_BITS, f_a_recv & _FLOW_BITS
        f_v_send, f_v_recv = f_v_send & _FLOW_BITS, f_v_recv & _FLOW_BITS
        if f_a_send or f_a_recv or f_v_send or f_v_recv:  # else nothing is or was quiet
            _stalls(st, now, th.silence_limit_ms(st.interval, dt_ms, th.stall_after_s))
        if looked or quiet_before:
            quiet = _any_quiet(st)
            if quiet != quiet_before:
                st.quiet = quiet

        ws_audio_send = ws_audio_recv = ws_video_send = ws_video_recv = None
        # The loss pool's old part, once per sample; a gap (or a clock that stepped back)
        # empties it, as the counters re-baseline.
        keep = exp(dt_s * th.loss_decay_per_s) if has_window else 0.0
        window_ms = dt_ms if has_window else 0
        if a_send is not None and audio_send is not None:
            ws_audio_send = _send(
                a_send, audio_send, True, available_out, cp_rtt, 0.0, f_a_send, dt_s, window_ms,
                keep, now, th,
            )
        if a_recv is not None and audio_recv is not None:
            ws_audio_recv = _recv(
                a_recv, audio_recv, True, available_in, rtt_fallback, f_a_recv, dt_s, keep, now,
                th,
            )
        if v_send is not None and video_send is not None:
            ws_video_send = _send(
                v_send, video_send, False, available_out, cp_rtt, audio_demand, f_v_send, dt_s,
                window_ms, keep, now, th,
            )  # fmt: skip
        if v_recv is not None and video_recv is not None:
            ws_video_recv = _recv(
                v_recv, video_recv, False, available_in, rtt_fallback, f_v_recv, dt_s, keep, now,
                th,
            )
        windows = (ws_audio_send, ws_audio_recv, ws_video_send, ws_video_recv)
        _overall(st)
        if upstream is not None and evidenced is not None:
            cause = upstream_cause(st, inbound, upstream, th, evidenced)
        else:
            cause = None
        if cause is not cause_before:
            st.cause = cause
        if uplinks is not None:
            derive_uplinks(
                st, outbound, _uplink_window(ws_audio_send, audio_send),
                _uplink_window(ws_video_send, video_send), now, th, uplinks,
            )  # fmt: skip
    else:
        st.level = 0
        st.limited_by = CONNECTION_STATE
        if cause_before is not None:
            st.cause = cause = None

    # ``is``: upstream_cause returns the held cause itself while it stays (and None is None).
    if not first and levels_of(st) == before and cause is cause_before:
        return None, False
    stats = None
    if windows is not None:
        stats = tuple(None if w is None else _component_stats(w, th) for w in windows)
    return _event(st, seq, now, before, stats, departed=False), False


def _uplink_window(
    ws: WindowStats | None, w: SendWindow | None
) -> tuple[float, bool, float] | None:
    """(pool loss, bandwidth-limited, bandwidth score) of a send component's window."""
    if ws is None or w is None:
        return None
    return ws[3], w[6], ws[6]


def mark_stale(st: ParticipantState, at_ms: int) -> LevelEvent | None:
    """No sample for too long: level 0 until the next sample (event only on the change)."""
    if st.stale:
        return None
    before = levels_of(st)
    st.stale = True
    st.level = 0
    st.limited_by = STALENESS
    st.cause = None
    if levels_of(st) == before:
        return None
    return _event(st, st.seq, at_ms, before, None, departed=False, suffix="stale")


def expire(st: ParticipantState, at_ms: int) -> LevelEvent:
    """Silent past the TTL: the participant is gone; a final event before dropping state."""
    before = levels_of(st)
    st.level = 0
    st.limited_by = STALENESS
    st.cause = None
    return _event(st, st.seq, at_ms, before, None, departed=True, suffix="expired")


def _component(present: bool, send: bool) -> ComponentState | None:
    """A new component when its first track appears (send: the ramp-up grace begins, at call
    start or when a camera is turned on mid-call: the estimate ramps up either way), None
    when its last track went."""
    if not present:
        return None
    return ComponentState(ramp_ms=0) if send else ComponentState()


def _look(
    cs: ComponentState, moved: int, quiet_before: bool, has_window: bool, window_start: int
) -> int:
    """:func:`_flow`, with ``_LOOKED`` set when it ran; the usual component (nothing was
    quiet, and it moved packets) is not read at all."""
    if quiet_before or (has_window and moved <= 0):
        return _flow(cs, moved, has_window, window_start) | _LOOKED
    return _FLOWING


def _any_quiet(st: ParticipantState) -> bool:
    """Whether some component is quiet, or has no evidence (``ParticipantState.quiet``)."""
    for cs in (st.audio_send, st.audio_recv, st.video_send, st.video_recv):
        if cs is not None and cs.quiet_since != -1:
            return True
    return False


def _flow(cs: ComponentState, moved: int, has_window: bool, window_start: int) -> int:
    """How the component's packets flowed this window; keeps ``cs.quiet_since``.

    Quiet: unmuted tracks had a delta but moved no packets (``quiet_since`` is when that
    began). Resumed: the first window that is not quiet after a quiet spell (a stall may
    end). Without a window (a gap, the first sample) nothing changes. With only muted tracks,
    or no track with a delta, there is no evidence: ``quiet_since`` is -2 and the component
    takes no part in stall decisions (a muted camera never stalls, nor hides a dead link).
    """
    quiet_since = cs.quiet_since
    if not has_window:
        return _QUIET if quiet_since >= 0 else _FLOWING
    if moved < 0:
        if quiet_since != _NO_EVIDENCE:
            cs.quiet_since = _NO_EVIDENCE
        return _RESUMED if quiet_since >= 0 else _FLOWING
    if moved == 0:
        if quiet_since < 0:
            cs.quiet_since = window_start
        return _QUIET
    if quiet_since == -1:
        return _FLOWING
    cs.quiet_since = -1
    return _RESUMED if quiet_since >= 0 else _FLOWING


def _stalls(st: ParticipantState, now_ms: int, stall_ms: float) -> None:
    """Which components are stalled (read 0), from how long each has been quiet.

    Sending stalls when its unmuted tracks moved nothing past the limit: a network outage
    does not do that (the sender keeps sending into it; the lab sees bytesSent climb), the
    participant's media has stopped. Receiving stalls only when every subscribed kind with
    unmuted tracks is quiet: one quiet remote video is a remote pausing or an SFU layer
    switch. Both directions going quiet together (within one stall period) is a suspended
    connection, not a stall: an SFU leg parked while a P2P leg carries the call (the bundled
    Jitsi dump), or an app pausing all media. A component already stalled stays stalled.
    """
    a_send, a_recv, v_send, v_recv = st.audio_send, st.audio_recv, st.video_send, st.video_recv
    send_seen = recv_seen = False
    all_quiet = True
    first_quiet, last_quiet = now_ms, 0
    for i, cs in enumerate((a_send, v_send, a_recv, v_recv)):
        if cs is None or cs.quiet_since == _NO_EVIDENCE:
            continue
        if i < 2:
            send_seen = True
        else:
            recv_seen = True
        since = cs.quiet_since
        if since < 0:
            all_quiet = False
        else:
            first_quiet = since if since < first_quiet else first_quiet
            last_quiet = since if since > last_quiet else last_quiet
    if send_seen and recv_seen and all_quiet and last_quiet - first_quiet < stall_ms:
        for cs in (a_send, v_send, a_recv, v_recv):
            if cs is not None and cs.quiet_since >= 0:
                cs.quiet_since = now_ms  # a stall is counted from the end of a suspension
                _stall(cs, False)
        return
    recv_quiet = recv_seen
    for cs in (a_recv, v_recv):
        if cs is not None and cs.quiet_since != _NO_EVIDENCE and not (
            cs.quiet_since >= 0 and now_ms - cs.quiet_since >= stall_ms
        ):
            recv_quiet = False
    for cs in (a_recv, v_recv):
        if cs is not None:
            _stall(cs, recv_quiet and cs.quiet_since != _NO_EVIDENCE)
    for cs in (a_send, v_send):
        if cs is not None:
            _stall(cs, cs.quiet_since >= 0 and now_ms - cs.quiet_since >= stall_ms)


def _stall(cs: ComponentState, stalled: bool) -> None:
    """Stall (level 0, the smoothed level held aside) or end a stall (the held level back)."""
    if stalled and cs.held < 0 and cs.level != NO_LEVEL:
        cs.held = cs.level
        cs.level = 0
        cs.up_since = -1
    elif not stalled and cs.held >= 0:
        cs.level = cs.held
        cs.held = -1


def _pooled_loss(
    cs: ComponentState, lost: int, packets: int, flow: int, keep: float, th: Thresholds
) -> tuple[float, float]:
    """Add this window to the decaying packet pool, the old part kept at ``keep``: (point
    estimate, proven lower bound), both -1.0 while the pool holds fewer than
    ``loss_min_packets`` packets.
    """
    pool: int = cs.loss_pool
    n = (pool & _POOL_MASK) * 0.1 * keep
    if flow == _FLOWING and packets > 0:
        n += packets
    k = 0.0
    thousandths = pool >> 32
    if thousandths > 0 or lost > 0:
        k = thousandths * 0.001 * keep
        if flow == _FLOWING and packets > 0:
            k += lost
        if k < n * 0.0005:  # below 0.05 % the bound is 0: forget it, skip the arithmetic
            k = 0.0
    tenths = int(n * 10.0 + 0.5)
    new_pool = (int(k * 1000.0 + 0.5) << 32) | (tenths if tenths < _POOL_MASK else _POOL_MASK)
    if new_pool != pool:  # steady clean traffic settles on a fixed point: no write then
        cs.loss_pool = new_pool
    if n < th.loss_min_packets:
        return -1.0, -1.0
    if k == 0.0:
        return 0.0, 0.0
    return (k / n if k < n else 1.0), lower_loss_bound(k, n, th.loss_confidence_z)


def pool_of(cs: ComponentState) -> tuple[float, float]:
    """(packets, lost) in a component's loss pool."""
    return (cs.loss_pool & _POOL_MASK) * 0.1, (cs.loss_pool >> 32) * 0.001


def _latest_loss(lost: int, packets: int, th: Thresholds) -> float:
    """The loss this window alone proves (0.0 with too few packets to say): a rise needs the
    latest window to agree with the pool, which still remembers the good seconds when
    trouble comes back."""
    if lost <= 0 or packets < th.loss_min_packets:
        return 0.0
    return lower_loss_bound(lost, packets, th.loss_confidence_z)


def _send(
    cs: ComponentState,
    w: SendWindow,
    audio: bool,
    available: float | None,
    cp_rtt: float | None,
    audio_demand: float,
    flow: int,
    dt_s: float,
    window_ms: int,
    keep: float,
    now_ms: int,
    th: Thresholds,
) -> WindowStats:
    """Score and smooth one send component; returns its window's stats."""
    (deltas, sent_bytes, lost, loss_packets, w_demand, nominal, limited, rtt, jitter, w_fraction,
     _) = w  # fmt: skip
    actual = sent_bytes * 8.0 / dt_s if flow != _QUIET and deltas else None
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
    fraction, proven = _pooled_loss(cs, lost, loss_packets, flow, keep, th)
    sent = w[10]
    if fraction < 0.0 and w_fraction >= 0.0 and sent >= th.loss_min_packets:
        # No track reports packetsLost: the receiver's fractionLost is all there is, judged
        # over the packets this window sent (it proves no more than they do).
        fraction = w_fraction
        proven = lower_loss_bound(w_fraction * sent, sent, th.loss_confidence_z)
    if rtt < 0.0 and cp_rtt is not None:
        rtt = cp_rtt
    weight = th.loss_weight_audio if audio else th.loss_weight_video
    prefix = "audio.send." if audio else "video.send."
    return _score_and_smooth(
        cs, prefix, actual, available, capacity, demand, fraction, proven, lost, loss_packets,
        rtt, jitter, weight, _ramping(cs, available, window_ms, th), flow, now_ms, th,
    )  # fmt: skip


def _ramping(cs: ComponentState, available: float | None, dt_ms: int, th: Thresholds) -> bool:
    """Whether the call-start ramp-up of the bandwidth estimate still goes on (see
    ``Thresholds.ramp_max_s``); once it stops, it is over for good."""
    ramp_ms: int = cs.ramp_ms
    if ramp_ms < 0:
        return False
    ramp_ms += dt_ms
    if available is not None and ramp_ms <= th.ramp_max_s * 1000.0:
        peak: int = cs.ramp_peak
        flat_ms: int = cs.ramp_flat_ms + dt_ms
        if available > peak * (1.0 + th.ramp_rise):
            peak = cs.ramp_peak = int(available)
            flat_ms = 0
        if available >= peak * (1.0 - th.ramp_drop) and flat_ms <= th.ramp_plateau_s * 1000.0:
            cs.ramp_ms = ramp_ms
            cs.ramp_flat_ms = flat_ms
            return True
    _end_ramp(cs)
    return False


def _end_ramp(cs: ComponentState) -> None:
    cs.ramp_ms = -1
    cs.ramp_peak = cs.ramp_flat_ms = 0


def _recv(
    cs: ComponentState,
    w: RecvWindow,
    audio: bool,
    available_in: float | None,
    rtt: float,
    flow: int,
    dt_s: float,
    keep: float,
    now_ms: int,
    th: Thresholds,
) -> WindowStats:
    """Score and smooth one receive component; returns its window's stats."""
    deltas, received_bytes, lost, loss_packets, expected, expected_all, jitter, _ = w
    actual = capacity = demand = available = None
    fraction, proven = _pooled_loss(cs, lost, loss_packets, flow, keep, th)
    if flow != _QUIET and deltas:
        actual = received_bytes * 8.0 / dt_s
        # Received bitrate is bursty (key frames): smooth it over ~2 windows before comparing,
        # but start afresh when the expected rate changes (a stream came, went or switched
        # layers): the old average belongs to another demand.
        previous_rate: float = cs.rate
        fresh = previous_rate < 0.0
        if expected_all and expected > 0.0:
            demand = expected
            if expected != cs.reference:
                cs.reference = expected
                fresh = True
        rate = actual if fresh else 0.5 * (previous_rate + actual)
        cs.rate = rate
        available = available_in
        capacity = rate if available is None else min(rate, available)
        if demand is None and not audio:
            # No expectedBitrate: score only troubled windows, against the rate of clean ones.
            remembered = decay(cs.reference, dt_s, th.demand_memory_half_life_s)
            if proven >= th.recv_trouble_loss:
                cs.reference = remembered
                demand = remembered if remembered > 0.0 else None
            else:
                cs.reference = max(remembered, rate)
    weight = th.loss_weight_audio if audio else th.loss_weight_video
    prefix = "audio.recv." if audio else "video.recv."
    return _score_and_smooth(
        cs, prefix, actual, available, capacity, demand, fraction, proven, lost, loss_packets,
        rtt, jitter, weight, False, flow, now_ms, th,
    )  # fmt: skip


def _score_and_smooth(
    cs: ComponentState,
    prefix: str,
    actual: float | None,
    available: float | None,
    capacity: float | None,
    demand: float | None,
    fraction: float,
    proven: float,
    w_lost: int,
    w_packets: int,
    rtt: float,
    jitter: float,
    loss_weight: float,
    ramping: bool,
    flow: int,
    now_ms: int,
    th: Thresholds,
) -> WindowStats:
    """The component's score is the worse of its packet and bandwidth scores; then smoothing.

    Packet score: 100 - delay effect - loss effect (the E-model adds impairments). Smoothing:
    worse news at once; better news one level per dwell (a longer one for the first step after
    a drop), above the next floor + margin. A quiet window (no packets) proves nothing, so it
    leaves the smoothed level alone.
    """
    bandwidth = loss = latency = -1.0
    lost_effect = delayed = 0.0
    if proven >= 0.0:
        lost_effect = loss_effect(proven, loss_weight)
        loss = 100.0 - lost_effect if lost_effect < 100.0 else 0.0
    if rtt >= 0.0 or jitter >= 0.0:
        delayed = delay_effect(0.0 if rtt < 0.0 else rtt, 0.0 if jitter < 0.0 else jitter, th)
        latency = 100.0 - delayed if delayed < 100.0 else 0.0
    packet = 100.0 - lost_effect - delayed
    score = packet if packet > 0.0 else 0.0
    metric = ""
    if score < 100.0:
        metric = _LOSS if lost_effect >= delayed else _LATENCY
    f5, f4, f3, f2 = th.level_floors  # Thresholds.level_of, inlined: it runs for every window
    if capacity is not None and demand is not None:
        bandwidth = bandwidth_score(capacity, demand, th)
        if ramping and score < f5:
            ramping = False  # loss or delay trouble: the estimate's low value may be real
            _end_ramp(cs)
        if bandwidth < score and not ramping:
            score, metric = bandwidth, _BANDWIDTH
    window = (actual, available, demand, fraction, rtt, jitter, bandwidth, loss, latency)
    if flow == _QUIET and cs.level != NO_LEVEL:
        cs.up_since = -1
        return window

    raw = 5 if score >= f5 else 4 if score >= f4 else 3 if score >= f3 else 2 if score >= f2 else 1
    level = cs.level
    if level == NO_LEVEL or raw <= level:
        if raw != level:
            cs.rising = 0
        cs.level = raw
        cs.limited_by = prefix + metric if raw < 5 else ""
        cs.up_since = -1
        return window
    latest = _latest_loss(w_lost, w_packets, th) if flow == _FLOWING else 0.0
    if latest > proven:  # better news must hold in the latest window too, not just the pool
        packet -= loss_effect(latest, loss_weight) - lost_effect
        score = packet if packet < score else score
    if th.level_of(score - th.upgrade_margin) <= level:
        cs.up_since = -1
        return window
    dwell_s = th.upgrade_dwell_s if cs.rising else th.upgrade_first_dwell_s
    if cs.up_since < 0:
        cs.up_since = now_ms
    elif now_ms - cs.up_since >= dwell_s * 1000.0:
        cs.level = level + 1
        cs.rising = 1
        cs.up_since = now_ms  # the next step needs a dwell of its own
        if cs.level == 5:
            cs.limited_by = ""
        elif raw < 5:  # still held below 5: name what limits it now, else keep the old reason
            cs.limited_by = prefix + metric
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
        loss = LossStats(
            level=th.level_of(loss_sc), fraction_lost=fraction if fraction >= 0.0 else None
        )
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
    if level == 0:  # only a stall makes a component 0: smoothing never goes below 1
        limited_by = _stalled_reason(st)
    st.level = level
    st.limited_by = limited_by or None


def _stalled_reason(st: ParticipantState) -> str:
    """``<kind>.<dir>.stalled`` of the first stalled component."""
    if st.audio_send is not None and st.audio_send.level == 0:
        return "audio.send." + _STALLED
    if st.audio_recv is not None and st.audio_recv.level == 0:
        return "audio.recv." + _STALLED
    if st.video_send is not None and st.video_send.level == 0:
        return "video.send." + _STALLED
    return "video.recv." + _STALLED


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
        cause=None if st.cause is None else Cause("upstream", st.cause[0], st.cause[1]),
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
