"""Scripted participants for tests, benchmarks and the simulator.

A :class:`ScriptedParticipant` turns per-second network conditions (capacity, loss, RTT,
jitter) and what it publishes/subscribes into samples with cumulative counters, exactly as a
browser's getStats would produce them, so every test drives the real decoder and engine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import msgspec

from pipelines.contracts.stats import (
    STATS_SCHEMA,
    CandidatePair,
    ConnectionState,
    InboundTrack,
    OutboundTrack,
    RemoteInbound,
    StatsSample,
)

AUDIO_BITRATE = 32_000.0
AUDIO_PACKET_RATE = 50.0
VIDEO_PACKET_BYTES = 1_100.0


@dataclass(slots=True)
class Conditions:
    """The network for one second: capacity each way (bits/s), loss fraction, RTT/jitter (s)."""

    uplink: float = 5_000_000.0
    downlink: float = 10_000_000.0
    loss: float = 0.0
    rtt: float = 0.04
    jitter: float = 0.003
    state: ConnectionState = "connected"


@dataclass(slots=True)
class _Counters:
    bytes: int = 0
    packets: int = 0
    lost: int = 0
    owed: float = 0.0
    """Loss not yet whole packets: 9 % of 50 packets a second is 4 or 5, 4.5 on average."""

    def lose(self, packets: int, loss: float, exact: bool) -> int:
        """Packets lost this interval: rounded per interval (more loss is never fewer lost
        packets in any interval, which the engine's property tests rely on), or, ``exact``,
        carried over so that the long-run share is exactly ``loss`` (the calibration's
        ladders: 9 % of 50 packets is 4.5, not round(4.5) = 4)."""
        if not exact:
            return round(packets * loss)
        self.owed += packets * loss
        lost = int(self.owed + 1e-9)
        self.owed -= lost
        return lost


@dataclass
class ScriptedParticipant:
    """One participant whose samples follow the conditions it is given, second by second."""

    participant_sid: str
    room_sid: str = "RM-test"
    region: str = "us1"
    publish_audio: bool = True
    publish_video: bool = False
    video_bitrate: float = 1_500_000.0
    video_height: int = 720
    subscribe_audio: int = 0
    subscribe_video: int = 0
    subscribed_video_bitrate: float = 1_000_000.0
    audio_packet_rate: float = AUDIO_PACKET_RATE
    """Opus sends 50 packets/s while talking; with DTX in silence, a few per second."""
    exact_loss: bool = False
    """Carry fractional lost packets between intervals (see ``_Counters.lose``)."""
    video_muted: bool = False
    """The app muted its camera: the video track stays published, says so, and sends nothing."""
    video_stopped: bool = False
    """The camera delivers nothing: the video track stays published and unmuted, yet sends
    nothing (a stalled sender)."""
    start_ms: int = 1_763_900_000_000
    interval_ms: int = 1_000
    seq: int = 0
    _out: dict[str, _Counters] = field(default_factory=dict)
    _in: dict[str, _Counters] = field(default_factory=dict)

    def step(self, conditions: Conditions | None = None) -> StatsSample:
        """Advance one interval under ``conditions`` and return the sample a client would send."""
        c = conditions or Conditions()
        self.seq += 1
        dt = self.interval_ms / 1000.0
        timestamp = self.start_ms + self.seq * self.interval_ms
        outbound: list[OutboundTrack] = []
        budget = c.uplink
        if self.publish_audio:
            sent = min(AUDIO_BITRATE, budget)
            budget -= sent
            outbound.append(
                self._outbound("MTa-" + self.participant_sid, "audio", sent, AUDIO_BITRATE, c, dt)
            )
        if self.publish_video:
            stopped = self.video_muted or self.video_stopped
            sent = 0.0 if stopped else min(self.video_bitrate, budget)
            track = self._outbound(
                "MTv-" + self.participant_sid, "video", sent, self.video_bitrate, c, dt
            )
            outbound.append(track)
        inbound: list[InboundTrack] = []
        down = c.downlink
        for i in range(self.subscribe_audio):
            got = min(AUDIO_BITRATE, down)
            down -= got
            inbound.append(self._inbound(f"MTra{i}", "audio", got, AUDIO_BITRATE, c, dt))
        for i in range(self.subscribe_video):
            got = min(self.subscribed_video_bitrate, down)
            down -= got
            inbound.append(
                self._inbound(f"MTrv{i}", "video", got, self.subscribed_video_bitrate, c, dt)
            )
        return StatsSample(
            schema=STATS_SCHEMA,
            room_sid=self.room_sid,
            participant_sid=self.participant_sid,
            region=self.region,
            timestamp=timestamp,
            seq=self.seq,
            connection_state=c.state,
            candidate_pair=CandidatePair(
                available_outgoing_bitrate=c.uplink,
                available_incoming_bitrate=None,
                current_round_trip_time=c.rtt,
            ),
            outbound=outbound,
            inbound=inbound,
        )

    def _outbound(
        self, sid: str, kind: str, bps: float, target: float, c: Conditions, dt: float
    ) -> OutboundTrack:
        counters = self._out.setdefault(sid, _Counters())
        packets = _packets(kind, bps, dt, self.audio_packet_rate)
        counters.bytes += int(bps * dt / 8)
        counters.packets += packets
        counters.lost += counters.lose(packets, c.loss, self.exact_loss)
        muted = kind == "video" and self.video_muted
        limited = bps < target * 0.95 and not muted and not self.video_stopped
        return OutboundTrack(
            track_sid=sid,
            kind=kind,  # type: ignore[arg-type]
            bytes_sent=counters.bytes,
            packets_sent=counters.packets,
            target_bitrate=bps if limited else target,
            frame_height=self.video_height if kind == "video" else None,
            quality_limitation_reason=("bandwidth" if limited else "none")
            if kind == "video"
            else None,
            remote=RemoteInbound(
                packets_lost=counters.lost,
                fraction_lost=min(c.loss, 1.0),
                jitter=c.jitter,
                round_trip_time=c.rtt,
            ),
            muted=True if muted else None,
        )

    def _inbound(
        self, sid: str, kind: str, bps: float, expected: float, c: Conditions, dt: float
    ) -> InboundTrack:
        counters = self._in.setdefault(sid, _Counters())
        packets = _packets(kind, bps, dt, self.audio_packet_rate)
        lost = counters.lose(packets, c.loss, self.exact_loss)
        counters.bytes += int(bps * dt / 8)
        counters.packets += packets - lost
        counters.lost += lost
        return InboundTrack(
            track_sid=sid,
            kind=kind,  # type: ignore[arg-type]
            bytes_received=counters.bytes,
            packets_received=counters.packets,
            packets_lost=counters.lost,
            jitter=c.jitter,
            expected_bitrate=expected,
        )


def _packets(kind: str, bps: float, dt: float, audio_rate: float = AUDIO_PACKET_RATE) -> int:
    if kind == "audio":
        return round(audio_rate * dt) if bps > 0 else 0
    return max(round(bps * dt / 8 / VIDEO_PACKET_BYTES), 1 if bps > 0 else 0)


def scripted_session() -> list[StatsSample]:
    """Three participants, interleaved: a loss burst, a bandwidth collapse, a reconnect."""
    scripts = [
        (
            ScriptedParticipant("PA-loss", room_sid="RM1", publish_video=True, subscribe_audio=1),
            [Conditions()] * 3 + [Conditions(loss=0.12)] * 2 + [Conditions()] * 7,
        ),
        (
            ScriptedParticipant("PA-bw", room_sid="RM1", publish_video=True, region="eu1"),
            [Conditions()] * 2 + [Conditions(uplink=350_000)] * 4 + [Conditions()] * 6,
        ),
        (
            ScriptedParticipant("PA-rc", room_sid="RM2", subscribe_video=2),
            [Conditions()] * 4 + [Conditions(state="reconnecting")] * 2 + [Conditions()] * 6,
        ),
    ]
    samples = []
    for step in range(12):
        for participant, conditions in scripts:
            samples.append(participant.step(conditions[step]))
    return samples


_STATES = ["connected"] * 12 + ["reconnecting", "failed", "new", "connecting", "disconnected"]


def random_stream(seed: int, participants: int = 8, samples: int = 300) -> list[StatsSample]:
    """Interleaved samples of ``participants`` with every kind of trouble the engine handles."""
    rnd = random.Random(seed)
    people = [
        ScriptedParticipant(
            f"PA{i}",
            room_sid=f"RM{i % 3}",
            publish_audio=rnd.random() < 0.9,
            publish_video=rnd.random() < 0.7,
            video_height=rnd.choice([0, 180, 360, 720, 1080, 2160]),
            subscribe_audio=rnd.randint(0, 3),
            subscribe_video=rnd.randint(0, 3),
            subscribed_video_bitrate=rnd.choice([200_000.0, 1_000_000.0]),
        )
        for i in range(participants)
    ]
    out: list[StatsSample] = []
    while len(out) < samples:
        p = rnd.choice(people)
        trouble = rnd.random()
        if trouble < 0.03:  # the client re-created its peer connection: counters restart
            p._out.clear()
            p._in.clear()
        elif trouble < 0.06:  # silence: a gap, sometimes past the stale threshold
            p.seq += rnd.choice([2, 11, 40])
        conditions = Conditions(
            uplink=rnd.choice([5e6, 5e6, 1e6, 300e3, 20e3, 0.0]),
            downlink=rnd.choice([10e6, 10e6, 500e3, 0.0]),
            loss=rnd.choice([0.0, 0.0, 0.0, 0.01, 0.05, 0.2, 0.6]),
            rtt=rnd.choice([0.04, 0.3, 1.5, 3.0]),
            jitter=rnd.choice([0.003, 0.05, 0.3]),
            state=rnd.choice(_STATES),  # type: ignore[arg-type]
        )
        sample = p.step(conditions)
        if rnd.random() < 0.1:
            sample = msgspec.structs.replace(sample, candidate_pair=None)
        out.append(sample)
        if rnd.random() < 0.05:
            out.append(sample)  # duplicate delivery
        if rnd.random() < 0.03 and len(out) > 5:
            out.append(out[-5])  # late, out of order
    return out
