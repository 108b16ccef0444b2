"""What one sample window says about one component: counter deltas and instant metrics.

A window is the interval between two consecutive accepted samples of a participant. Rates
come only from counter deltas inside one window; a counter that went backwards (a reset, a
re-created track) or a track seen for the first time gives no delta, so it cannot invent
loss or bitrate.

This runs for every track of every sample, so windows are plain tuples of numbers built from
local accumulators (no per-window objects); ``None`` means the component has no track.
"""

from __future__ import annotations

from msgspec.structs import astuple

from pipelines.contracts.stats import InboundTrack, OutboundTrack, RemoteInbound
from pipelines.quality.state import TrackCounters
from pipelines.quality.thresholds import Thresholds

# Tracks are read with one ``astuple`` call instead of an attribute lookup per field (much
# cheaper when compiled), so the unpacking below relies on the contracts' field order.
_FIELD_ORDER = {
    OutboundTrack: ("track_sid", "kind", "bytes_sent", "packets_sent", "target_bitrate",
                    "frame_width", "frame_height", "frames_per_second",
                    "quality_limitation_reason", "remote", "muted"),
    RemoteInbound: ("packets_lost", "fraction_lost", "jitter", "round_trip_time"),
    InboundTrack: ("track_sid", "kind", "bytes_received", "packets_received", "packets_lost",
                   "jitter", "expected_bitrate", "muted"),
}  # fmt: skip
for _struct, _fields in _FIELD_ORDER.items():
    if _struct.__struct_fields__ != _fields:
        raise ImportError(f"{_struct.__name__} fields changed: update {__name__}")

SendWindow = tuple[int, int, int, int, float, float, bool, float, float, float, int]
"""All outbound tracks of one kind in one window:

``(deltas, bytes, lost, loss_packets, demand, nominal, limited, rtt, jitter, fraction_lost,
moved)``

- deltas: tracks that produced a counter delta: no delta, no rate (resets, new tracks).
- loss_packets: packets sent on tracks whose loss counter had a delta (loss denominator).
- demand: targetBitrate, or the nominal bitrate where a track does not say.
- nominal: demand by codec and resolution alone, for encoders limited since their first sample.
- limited: some encoder reports qualityLimitationReason == "bandwidth".
- rtt, jitter: worst remote-inbound report, -1.0 where none.
- fraction_lost: worst remote-inbound fractionLost of tracks that report no packetsLost (the
  only loss they give), -1.0 where none.
- moved: packets moved by unmuted tracks with a delta, -1 when there is none (a stall is
  unmuted tracks moving nothing; a muted track is never one).
"""

RecvWindow = tuple[int, int, int, int, float, bool, float, int]
"""All inbound tracks of one kind in one window:

``(deltas, bytes, lost, loss_packets, expected, expected_all, jitter, moved)``

- loss_packets: packets received + lost on tracks with a delta (loss denominator).
- expected: sum of expectedBitrate; expected_all: every track with a delta reported one.
- jitter: worst jitter, -1.0 where none.
- moved: as for :data:`SendWindow`.
"""


def fold_outbound(
    tracks: list[OutboundTrack],
    previous: dict[str, TrackCounters],
    has_window: bool,
    th: Thresholds,
    idle_before: tuple[str, ...],
    paused_before: tuple[str, ...],
    idle_now: list[str],
    paused_now: list[str],
) -> tuple[dict[str, TrackCounters], SendWindow | None, SendWindow | None]:
    """Fold outbound tracks into (new counters, audio send window, video send window).

    ``idle_before``: tracks that moved no packets in the previous window; ``paused_before``:
    in the previous two. The first window in which a paused track moves again adds no loss
    (its loss counter jumps at a restart); one quiet window is not a pause (a low-rate
    stream under heavy loss has those, and its loss must count). The tracks idle in this
    window are appended to ``idle_now``, those idle in this and the previous to ``paused_now``.
    """
    counters: dict[str, TrackCounters] = {}
    # Audio (a_) and video (v_) accumulators; *_present says the component exists.
    a_present = v_present = False
    a_deltas = a_bytes = a_lost = a_loss_packets = 0
    v_deltas = v_bytes = v_lost = v_loss_packets = 0
    a_moved = v_moved = -1
    a_demand = a_nominal = v_demand = v_nominal = 0.0
    a_limited = v_limited = False
    a_rtt = a_jitter = a_fraction = v_rtt = v_jitter = v_fraction = -1.0
    audio_nominal = th.audio_default_bitrate
    # Typed locals: compiled, they hold native ints and floats rather than Python objects.
    sid: str
    kind: str
    bytes_sent: int
    packets_sent: int
    target: float | None
    height: int | None
    reason: str | None
    remote: RemoteInbound | None
    muted: bool | None
    r_lost: int | None
    r_fraction: float | None
    r_jitter: float | None
    r_rtt: float | None
    for t in tracks:
        sid, kind, bytes_sent, packets_sent, target, _, height, _, reason, remote, muted = (
            astuple(t)
        )
        lost = -1
        r_fraction = r_jitter = r_rtt = None
        if remote is not None:
            r_lost, r_fraction, r_jitter, r_rtt = astuple(remote)
            if r_lost is not None:
                lost = r_lost
        counters[sid] = (bytes_sent, packets_sent, lost)
        # This track's counter delta, if it has one.
        delta = False
        d_bytes = d_packets = d_lost = d_loss_packets = 0
        if has_window:
            prev = previous.get(sid)
            if prev is not None and bytes_sent >= prev[0] and packets_sent >= prev[1]:
                delta = True
                d_bytes = bytes_sent - prev[0]
                d_packets = packets_sent - prev[1]
                if d_packets == 0:
                    idle_now.append(sid)
                    if idle_before and sid in idle_before:
                        paused_now.append(sid)
                elif lost >= prev[2] >= 0 and (not paused_before or sid not in paused_before):
                    d_lost = lost - prev[2]
                    d_loss_packets = d_packets
        limited = reason == "bandwidth"
        if kind == "audio":
            a_present = True
            a_demand += audio_nominal if target is None else target
            a_nominal += audio_nominal
            a_limited = a_limited or limited
            if r_rtt is not None and r_rtt > a_rtt:
                a_rtt = r_rtt
            if r_jitter is not None and r_jitter > a_jitter:
                a_jitter = r_jitter
            if r_fraction is not None and r_fraction > a_fraction and lost < 0:
                a_fraction = r_fraction
            if delta:
                a_deltas += 1
                a_bytes += d_bytes
                a_lost += d_lost
                a_loss_packets += d_loss_packets
                if not muted:
                    a_moved = d_packets if a_moved < 0 else a_moved + d_packets
        else:
            nominal = th.video_bitrate_for_height(height)
            v_present = True
            v_demand += nominal if target is None else target
            v_nominal += nominal
            v_limited = v_limited or limited
            if r_rtt is not None and r_rtt > v_rtt:
                v_rtt = r_rtt
            if r_jitter is not None and r_jitter > v_jitter:
                v_jitter = r_jitter
            if r_fraction is not None and r_fraction > v_fraction and lost < 0:
                v_fraction = r_fraction
            if delta:
                v_deltas += 1
                v_bytes += d_bytes
                v_lost += d_lost
                v_loss_packets += d_loss_packets
                if not muted:
                    v_moved = d_packets if v_moved < 0 else v_moved + d_packets
    audio = video = None
    if a_present:
        audio = (a_deltas, a_bytes, a_lost, a_loss_packets, a_demand, a_nominal, a_limited,
                 a_rtt, a_jitter, a_fraction, a_moved)  # fmt: skip
    if v_present:
        video = (v_deltas, v_bytes, v_lost, v_loss_packets, v_demand, v_nominal, v_limited,
                 v_rtt, v_jitter, v_fraction, v_moved)  # fmt: skip
    return counters, audio, video


def fold_inbound(
    tracks: list[InboundTrack],
    previous: dict[str, TrackCounters],
    has_window: bool,
    idle_before: tuple[str, ...],
    paused_before: tuple[str, ...],
    idle_now: list[str],
    paused_now: list[str],
) -> tuple[dict[str, TrackCounters], RecvWindow | None, RecvWindow | None]:
    """Fold inbound tracks into (new counters, audio recv window, video recv window); idle
    tracks as in :func:`fold_outbound` (a resumed stream's first window: 7 packets received
    and 36 counted lost at once in the bundled Chrome P2P dump)."""
    counters: dict[str, TrackCounters] = {}
    a_present = v_present = False
    a_deltas = a_bytes = a_lost = a_loss_packets = 0
    v_deltas = v_bytes = v_lost = v_loss_packets = 0
    a_moved = v_moved = -1
    a_expected = v_expected = 0.0
    a_expected_all = v_expected_all = True
    a_jitter = v_jitter = -1.0
    sid: str
    kind: str
    received: int
    packets: int
    lost: int
    jitter: float | None
    expected: float | None
    muted: bool | None
    for t in tracks:
        sid, kind, received, packets, lost, jitter, expected, muted = astuple(t)
        counters[sid] = (received, packets, lost)
        delta = False
        d_bytes = d_packets = d_lost = 0
        if has_window:
            prev = previous.get(sid)
            if prev is not None and received >= prev[0] and packets >= prev[1] and lost >= prev[2]:
                delta = True
                d_bytes = received - prev[0]
                d_packets = packets - prev[1]
                d_lost = lost - prev[2]
                if d_packets + d_lost == 0:  # nothing arrived nor went missing: idle
                    idle_now.append(sid)
                    if idle_before and sid in idle_before:
                        paused_now.append(sid)
                elif paused_before and sid in paused_before:
                    d_lost = -1  # a restart: no loss from this window (see above)
        if kind == "audio":
            a_present = True
            if jitter is not None and jitter > a_jitter:
                a_jitter = jitter
            if delta:
                a_deltas += 1
                if expected is None:
                    a_expected_all = False
                else:
                    a_expected += expected
                a_bytes += d_bytes
                if d_lost >= 0:
                    a_lost += d_lost
                    a_loss_packets += d_packets + d_lost
                if not muted:  # every packet the sender put on the wire, received or lost
                    a_moved = d_packets + d_lost if a_moved < 0 else a_moved + d_packets + d_lost
        else:
            v_present = True
            if jitter is not None and jitter > v_jitter:
                v_jitter = jitter
            if delta:
                v_deltas += 1
                if expected is None:
                    v_expected_all = False
                else:
                    v_expected += expected
                v_bytes += d_bytes
                if d_lost >= 0:
                    v_lost += d_lost
                    v_loss_packets += d_packets + d_lost
                if not muted:  # every packet the sender put on the wire, received or lost
                    v_moved = d_packets + d_lost if v_moved < 0 else v_moved + d_packets + d_lost
    audio = video = None
    if a_present:
        audio = (a_deltas, a_bytes, a_lost, a_loss_packets, a_expected, a_expected_all, a_jitter,
                 a_moved)  # fmt: skip
    if v_present:
        video = (v_deltas, v_bytes, v_lost, v_loss_packets, v_expected, v_expected_all, v_jitter,
                 v_moved)  # fmt: skip
    return counters, audio, video
