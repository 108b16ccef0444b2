"""The simulation: a scenario in, ``netquality.stats.v1`` samples out, one second at a time.

Pure and deterministic: no clock, no I/O, and every random draw comes from a generator seeded
by ``(seed, participant)``, so the same seed gives the same samples byte for byte whatever the
pacing. Samples look like what a browser publishes from ``getStats()``:

- cumulative byte/packet/loss counters per track that only grow, except that a reconnect
  (a new ``RTCPeerConnection``) starts them again from zero;
- ``outbound`` tracks with the encoder's ``targetBitrate`` following the bandwidth estimate
  down when limited (``qualityLimitationReason: "bandwidth"``, lower ``frameHeight``), and a
  ``remote`` block from the receiver's RTCP reports;
- ``inbound`` tracks for what the SFU forwards from everyone else in the room, with the
  layer's ``expectedBitrate``;
- ``candidatePair`` with ``availableOutgoingBitrate`` (the send-side estimate) and
  ``currentRoundTripTime``; none while reconnecting (no selected pair during an ICE restart).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from pipelines.contracts.stats import (
    STATS_SCHEMA,
    CandidatePair,
    ConnectionState,
    InboundTrack,
    OutboundTrack,
    RemoteInbound,
    StatsSample,
)
from pipelines.simulate.network import Impairment, LinkSecond, Network
from pipelines.simulate.scenario import (
    PROFILES,
    VIDEO_TARGET_BPS,
    ParticipantSpec,
    Scenario,
    ScriptedEvent,
)
from pipelines.simulate.traces import access_rtts_s, load_traces

AUDIO_BPS = 32_000.0
AUDIO_PACKETS_PER_S = 50
VIDEO_PACKET_BYTES = 1_100
VIDEO_FPS = 30.0
LIMITED_SHARE = 0.95
"""Below this share of its target an encoder is bandwidth-limited (Chrome reports it)."""
DEFAULT_START_MS = 1_763_900_000_000
LOW_LAYER_BPS = 150_000.0
"""The lowest simulcast layer (180p in libwebrtc's table)."""


@dataclass(slots=True)
class _Counters:
    bytes: int = 0
    packets: int = 0
    lost: int = 0


@dataclass(slots=True)
class _Sent:
    """What a participant's encoder sent in the last second (its subscribers receive it)."""

    video_bps: float = 0.0
    upstream_loss: float = 0.0
    """Scripted loss of its uplink alone (``uplink_loss``): its subscribers get it too."""


@dataclass
class SimulatedParticipant:
    """One participant's client: media state, counters, network; produces one sample/second."""

    spec: ParticipantSpec
    network: Network
    rng: random.Random
    events: list[ScriptedEvent]
    seq: int = 0
    left: bool = False
    reconnects: int = 0
    was_reconnecting: bool = False
    out_counters: dict[str, _Counters] = field(default_factory=dict)
    in_counters: dict[str, _Counters] = field(default_factory=dict)
    sent: _Sent = field(default_factory=_Sent)

    @property
    def sid(self) -> str:
        return self.spec.participant_sid

    @property
    def audio_track(self) -> str:
        return f"TA-{self.sid}"

    @property
    def video_track(self) -> str:
        return f"TV-{self.sid}"

    def present(self, second: int) -> bool:
        """Joined, not yet left (its ``closed`` sample at ``leave_s`` still counts)."""
        s = self.spec
        return second >= s.join_s and not self.left and (s.leave_s is None or second <= s.leave_s)

    def reconnecting(self, second: int) -> bool:
        return any(
            e.kind == "reconnect" and e.start_s <= second < e.end_s for e in self.events
        )

    def video_height(self, second: int) -> int | None:
        height = self.spec.video_height
        for e in self.events:
            if e.kind == "video_height" and e.start_s <= second < e.end_s:
                height = e.video_height
        return height

    def impairment(self, second: int) -> Impairment:
        factor, loss = 1.0, 0.0
        for e in self.events:
            if e.kind in ("collapse", "loss_burst") and e.start_s <= second < e.end_s:
                factor *= e.capacity_factor
                loss += e.extra_loss
        return Impairment(capacity_factor=factor, extra_loss=loss)

    def uplink_loss(self, second: int) -> float:
        return sum(
            e.extra_loss for e in self.events
            if e.kind == "uplink_loss" and e.start_s <= second < e.end_s
        )  # fmt: skip

    def publishing_video(self, second: int) -> bool:
        return self.video_height(second) is not None


class Simulation:
    """A scenario running second by second; :meth:`tick` returns that second's samples."""

    def __init__(self, scenario: Scenario, seed: int = 0, start_ms: int = DEFAULT_START_MS):
        self.scenario = scenario
        self.seed = seed
        self.start_ms = start_ms
        traces = load_traces()
        rtts = access_rtts_s()
        self.participants: list[SimulatedParticipant] = []
        for spec in scenario.participants:
            rng = random.Random(f"{seed}:{spec.participant_sid}")
            profile = PROFILES[spec.profile]
            down = traces[rng.choice(profile.traces)]
            up = traces[rng.choice(profile.traces)]
            network = Network(
                rng, down, up,
                uplink_ratio=profile.uplink_ratio, region=spec.region,
                access_rtt_s=rng.choice(rtts), loss=profile.loss,
                jitter_floor_s=profile.jitter_floor_s,
            )
            events = [e for e in scenario.events if e.participant_sid == spec.participant_sid]
            self.participants.append(SimulatedParticipant(spec, network, rng, events))
        self.second = 0

    def __iter__(self) -> Iterator[list[StatsSample]]:
        while True:
            yield self.tick()

    def tick(self) -> list[StatsSample]:
        """Advance one second; the samples of everyone present, in timestamp order."""
        second = self.second
        self.second += 1
        by_room: dict[str, list[SimulatedParticipant]] = {}
        for p in self.participants:
            if p.present(second) and not p.reconnecting(second):
                by_room.setdefault(p.spec.room_sid, []).append(p)
        samples: list[tuple[int, StatsSample]] = []
        for p in self.participants:
            if not p.present(second):
                continue
            peers = [q for q in by_room.get(p.spec.room_sid, []) if q is not p]
            sample = self._sample(p, second, peers)
            samples.append((sample.timestamp, sample))
        samples.sort(key=lambda pair: (pair[0], pair[1].participant_sid))
        return [s for _, s in samples]

    def _sample(
        self, p: SimulatedParticipant, second: int, peers: list[SimulatedParticipant]
    ) -> StatsSample:
        p.seq += 1
        timestamp = self.start_ms + second * 1000 + p.spec.phase_ms
        spec = p.spec
        state: ConnectionState = "connected"
        outbound: list[OutboundTrack] = []
        inbound: list[InboundTrack] = []
        candidate: CandidatePair | None = None
        if spec.leave_s is not None and second >= spec.leave_s:
            p.left = True
            state = "closed"
        elif p.reconnecting(second):
            state = "reconnecting"
            p.was_reconnecting = True
            p.sent.video_bps = 0.0
        else:
            if p.was_reconnecting:  # a new peer connection: every counter starts again
                p.was_reconnecting = False
                p.reconnects += 1
                p.out_counters.clear()
                p.in_counters.clear()
            outbound, inbound, candidate = self._media(p, second, peers)
        if state != "connected":
            # No media flows; the last counters are reported as they stand.
            outbound = [self._frozen_out(p, sid) for sid in sorted(p.out_counters)]
        return StatsSample(
            schema=STATS_SCHEMA,
            room_sid=spec.room_sid,
            participant_sid=spec.participant_sid,
            region=spec.region,
            timestamp=timestamp,
            seq=p.seq,
            connection_state=state,
            candidate_pair=candidate,
            outbound=outbound,
            inbound=inbound,
            topology=spec.topology,
        )

    def _media(
        self, p: SimulatedParticipant, second: int, peers: list[SimulatedParticipant]
    ) -> tuple[list[OutboundTrack], list[InboundTrack], CandidatePair]:
        height = p.video_height(second)
        target = VIDEO_TARGET_BPS.get(height, 500_000.0) if height is not None else 0.0
        subscriptions: list[tuple[str, str, float, float]] = []  # (track, kind, bps, upstream)
        senders = [
            q for q in sorted(peers, key=lambda q: q.sid)
            if not p.spec.audio_only and q.publishing_video(second) and q.sent.video_bps > 0
        ]
        # Simulcast: the SFU forwards the preferred layer while its estimate of this
        # participant's downlink holds them all, else the lowest layer.
        layer = p.spec.recv_layer_bps
        estimate = p.network.estimate_down
        if estimate >= 0 and len(senders) * layer + len(peers) * AUDIO_BPS > estimate:
            layer = LOW_LAYER_BPS
        for q in sorted(peers, key=lambda q: q.sid):
            upstream = q.sent.upstream_loss
            subscriptions.append((q.audio_track, "audio", AUDIO_BPS, upstream))
            if q in senders:
                bps = min(layer, q.sent.video_bps)
                subscriptions.append((q.video_track, "video", bps, upstream))
        demand_down = sum(bps for _, _, bps, _ in subscriptions)
        link = p.network.step(second, AUDIO_BPS + target, demand_down, p.impairment(second))

        p.sent.upstream_loss = p.uplink_loss(second)
        outbound = [self._send(p, p.audio_track, "audio", AUDIO_BPS, None, link)]
        p.sent.video_bps = 0.0
        if height is not None:
            outbound.append(self._send(p, p.video_track, "video", target, height, link))
        # The SFU forwards audio first, and video within what is left of its estimate.
        audio_down = sum(bps for _, kind, bps, _ in subscriptions if kind == "audio")
        video_down = demand_down - audio_down
        room = max(link.estimate_down_bps - audio_down, 0.0)
        share = min(1.0, room / video_down) if video_down > 0 else 1.0
        inbound = [
            self._receive(
                p, track, kind, expected, expected * (share if kind == "video" else 1.0), link,
                upstream,
            )
            for track, kind, expected, upstream in subscriptions
        ]
        candidate = CandidatePair(
            available_outgoing_bitrate=round(link.estimate_up_bps),
            current_round_trip_time=round(link.rtt_s, 4),
        )
        return outbound, inbound, candidate

    def _send(
        self,
        p: SimulatedParticipant,
        track: str,
        kind: str,
        target: float,
        height: int | None,
        link: LinkSecond,
    ) -> OutboundTrack:
        rng = p.rng
        available = link.estimate_up_bps
        if kind == "video":
            available = max(available - AUDIO_BPS, 0.0)
        rate = min(target, available)
        limited = kind == "video" and rate < LIMITED_SHARE * target
        if kind == "video":
            rate *= rng.uniform(0.92, 1.0)  # encoders undershoot their target a little
            p.sent.video_bps = rate
            if limited and height is not None and rate < 0.5 * target:
                height = max(h for h in (180, 360, 720) if h <= max(180, height // 2))
        packets = (
            AUDIO_PACKETS_PER_S if kind == "audio"
            else max(1, round(rate / 8 / VIDEO_PACKET_BYTES)) if rate > 0 else 0
        )
        loss = link.loss_up + (link.overflow_up if kind == "video" else 0.0) + p.sent.upstream_loss
        lost = _draw_lost(rng, packets, loss)
        c = p.out_counters.setdefault(track, _Counters())
        c.bytes += int(rate / 8)
        c.packets += packets
        c.lost += lost
        return OutboundTrack(
            track_sid=track,
            kind=kind,  # type: ignore[arg-type]
            bytes_sent=c.bytes,
            packets_sent=c.packets,
            target_bitrate=round(rate if limited else target),
            frame_width=height * 16 // 9 if height else None,
            frame_height=height,
            frames_per_second=(VIDEO_FPS if not limited else 24.0) if kind == "video" else None,
            quality_limitation_reason=("bandwidth" if limited else "none")
            if kind == "video" else None,
            remote=RemoteInbound(
                packets_lost=c.lost,
                fraction_lost=round(lost / packets, 4) if packets else 0.0,
                jitter=round(link.jitter_up_s, 4),
                round_trip_time=round(link.rtt_s, 4),
            ),
        )

    def _receive(
        self,
        p: SimulatedParticipant,
        track: str,
        kind: str,
        expected: float,
        rate: float,
        link: LinkSecond,
        upstream: float = 0.0,
    ) -> InboundTrack:
        rng = p.rng
        packets = (
            AUDIO_PACKETS_PER_S if kind == "audio"
            else max(1, round(rate / 8 / VIDEO_PACKET_BYTES)) if rate > 0 else 0
        )
        loss = link.loss_down + (link.overflow_down if kind == "video" else 0.0)
        if upstream > 0.0:  # what the publisher's uplink lost never left the SFU
            loss = 1.0 - (1.0 - min(loss, 1.0)) * (1.0 - upstream)
        lost = _draw_lost(rng, packets, loss)
        c = p.in_counters.setdefault(track, _Counters())
        c.bytes += int(rate * (packets - lost) / max(packets, 1) / 8)
        c.packets += packets - lost
        c.lost += lost
        return InboundTrack(
            track_sid=track,
            kind=kind,  # type: ignore[arg-type]
            bytes_received=c.bytes,
            packets_received=c.packets,
            packets_lost=c.lost,
            jitter=round(link.jitter_down_s, 4),
            expected_bitrate=round(expected),
        )

    @staticmethod
    def _frozen_out(p: SimulatedParticipant, track: str) -> OutboundTrack:
        c = p.out_counters[track]
        return OutboundTrack(
            track_sid=track,
            kind="audio" if track.startswith("TA-") else "video",
            bytes_sent=c.bytes,
            packets_sent=c.packets,
        )


def _draw_lost(rng: random.Random, packets: int, loss: float) -> int:
    """Lost packets of ``packets`` at rate ``loss``: the expectation, randomly rounded."""
    expected = packets * min(max(loss, 0.0), 1.0)
    whole = int(expected)
    return min(packets, whole + (1 if rng.random() < expected - whole else 0))
