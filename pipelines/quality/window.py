"""What one sample window says about one component: counter deltas and instant metrics.

A window is the interval between two consecutive accepted samples of a participant. Rates
come only from counter deltas inside one window; a counter that went backwards (a reset, a
re-created track) or a track seen for the first time gives no delta, so it cannot invent
loss or bitrate.
"""

from __future__ import annotations

from pipelines.contracts.stats import InboundTrack, OutboundTrack
from pipelines.quality.state import TrackCounters
from pipelines.quality.thresholds import Thresholds


class ComponentWindow:
    """Accumulates one component's tracks of one sample (say all outbound video tracks)."""

    __slots__ = (
        "bytes",
        "deltas",
        "demand",
        "expected",
        "expected_all",
        "fraction_lost",
        "jitter",
        "limited",
        "loss_packets",
        "lost",
        "nominal",
        "packets",
        "present",
        "rtt",
    )

    def __init__(self) -> None:
        self.present = False
        self.deltas = 0
        """Tracks that produced a counter delta: no delta, no rate (resets, new tracks)."""
        self.bytes = 0
        self.packets = 0
        self.lost = 0
        self.loss_packets = 0
        """Packets sent/received on tracks whose loss counter had a delta (loss denominator)."""
        self.demand = 0.0
        self.nominal = 0.0
        """Demand by codec and resolution alone, for encoders limited since their first sample."""
        self.expected = 0.0
        self.expected_all = True
        self.limited = False
        """Some encoder of this component reports qualityLimitationReason == "bandwidth"."""
        self.rtt = -1.0
        self.jitter = -1.0
        self.fraction_lost = -1.0


def add_outbound(
    windows: tuple[ComponentWindow, ComponentWindow],
    tracks: list[OutboundTrack],
    previous: dict[str, TrackCounters],
    has_window: bool,
    th: Thresholds,
) -> dict[str, TrackCounters]:
    """Fold outbound tracks into the (audio, video) send windows; return the new counters."""
    audio, video = windows
    counters: dict[str, TrackCounters] = {}
    for t in tracks:
        remote = t.remote
        lost = -1
        if remote is not None and remote.packets_lost is not None:
            lost = remote.packets_lost
        counters[t.track_sid] = (t.bytes_sent, t.packets_sent, lost)
        if t.kind == "audio":
            w = audio
            nominal = th.audio_default_bitrate
        else:
            w = video
            nominal = th.video_bitrate_for_height(t.frame_height)
        w.present = True
        w.demand += nominal if t.target_bitrate is None else t.target_bitrate
        w.nominal += nominal
        if t.quality_limitation_reason == "bandwidth":
            w.limited = True
        if remote is not None:
            if remote.round_trip_time is not None and remote.round_trip_time > w.rtt:
                w.rtt = remote.round_trip_time
            if remote.jitter is not None and remote.jitter > w.jitter:
                w.jitter = remote.jitter
            if remote.fraction_lost is not None and remote.fraction_lost > w.fraction_lost:
                w.fraction_lost = remote.fraction_lost
        if has_window:
            prev = previous.get(t.track_sid)
            if prev is not None and t.bytes_sent >= prev[0] and t.packets_sent >= prev[1]:
                sent = t.packets_sent - prev[1]
                w.deltas += 1
                w.bytes += t.bytes_sent - prev[0]
                w.packets += sent
                if lost >= prev[2] >= 0:
                    w.lost += lost - prev[2]
                    w.loss_packets += sent
    return counters


def add_inbound(
    windows: tuple[ComponentWindow, ComponentWindow],
    tracks: list[InboundTrack],
    previous: dict[str, TrackCounters],
    has_window: bool,
) -> dict[str, TrackCounters]:
    """Fold inbound tracks into the (audio, video) recv windows; return the new counters."""
    audio, video = windows
    counters: dict[str, TrackCounters] = {}
    for t in tracks:
        counters[t.track_sid] = (t.bytes_received, t.packets_received, t.packets_lost)
        w = audio if t.kind == "audio" else video
        w.present = True
        if t.jitter is not None and t.jitter > w.jitter:
            w.jitter = t.jitter
        if has_window:
            prev = previous.get(t.track_sid)
            if (
                prev is not None
                and t.bytes_received >= prev[0]
                and t.packets_received >= prev[1]
                and t.packets_lost >= prev[2]
            ):
                received = t.packets_received - prev[1]
                lost = t.packets_lost - prev[2]
                w.deltas += 1
                if t.expected_bitrate is None:
                    w.expected_all = False
                else:
                    w.expected += t.expected_bitrate
                w.bytes += t.bytes_received - prev[0]
                w.packets += received
                w.lost += lost
                w.loss_packets += received + lost
    return counters
