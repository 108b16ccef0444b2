"""A scripted SFU room for the attribution tests: every member publishes audio and video and
subscribes to every other member's tracks; a publisher's uplink loss reaches each subscriber
on top of the subscriber's own downlink loss (counted exactly: no randomness)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.contracts.stats import (
    STATS_SCHEMA,
    CandidatePair,
    InboundTrack,
    OutboundTrack,
    RemoteInbound,
    StatsSample,
    Topology,
)

START_MS = 1_763_900_000_000
MEDIA = (("audio", 50, 32_000.0), ("video", 170, 1_500_000.0))
"""(kind, packets per second, bits per second) of what every member publishes."""

Script = list[tuple[int, int, float]]
"""(from second, to second, loss) spells; overlapping spells add up."""


@dataclass
class _Counter:
    packets: int = 0
    lost: int = 0
    owed: float = 0.0
    bytes: int = 0

    def add(self, packets: int, loss: float, bps: float) -> None:
        self.owed += packets * loss
        lost = int(self.owed)
        self.owed -= lost
        self.packets += packets
        self.lost += lost
        self.bytes += int(bps / 8 * (packets - lost) / packets)


@dataclass
class Member:
    sid: str
    phase_ms: int = 0
    """Where in each second its stats are taken (clients are not in lockstep)."""
    uplink: Script = field(default_factory=list)
    downlink: Script = field(default_factory=list)
    leave_s: int | None = None
    _out: dict[str, _Counter] = field(default_factory=dict)
    _in: dict[str, _Counter] = field(default_factory=dict)
    _seq: int = 0

    def track(self, kind: str) -> str:
        return f"MT-{self.sid}-{kind}"

    def present(self, second: int) -> bool:
        return self.leave_s is None or second <= self.leave_s


def _loss(script: Script, second: int) -> float:
    return sum(loss for start, end, loss in script if start <= second < end)


def room_samples(
    members: list[Member],
    seconds: int,
    topology: Topology | None = "sfu",
    room_sid: str = "RM-sfu",
) -> list[StatsSample]:
    """Every member's samples, one a second each, in timestamp order; a member past its
    ``leave_s`` sends a last ``closed`` sample and is gone."""
    samples: list[StatsSample] = []
    for second in range(1, seconds + 1):
        here = [m for m in members if m.present(second)]
        for m in here:
            m._seq += 1
            outbound = []
            for kind, pps, bps in MEDIA:
                c = m._out.setdefault(kind, _Counter())
                c.add(pps, _loss(m.uplink, second), bps)
                outbound.append(
                    OutboundTrack(
                        track_sid=m.track(kind), kind=kind, bytes_sent=c.packets * 100,
                        packets_sent=c.packets, target_bitrate=bps,
                        frame_height=720 if kind == "video" else None,
                        remote=RemoteInbound(
                            packets_lost=c.lost, jitter=0.002, round_trip_time=0.04
                        ),
                    )
                )  # fmt: skip
            inbound = []
            for p in here:
                if p is m:
                    continue
                for kind, pps, bps in MEDIA:
                    loss = 1 - (1 - _loss(p.uplink, second)) * (1 - _loss(m.downlink, second))
                    c = m._in.setdefault(p.track(kind), _Counter())
                    c.add(pps, loss, bps)
                    inbound.append(
                        InboundTrack(
                            track_sid=p.track(kind), kind=kind, bytes_received=c.bytes,
                            packets_received=c.packets - c.lost, packets_lost=c.lost,
                            jitter=0.002, expected_bitrate=bps,
                        )
                    )  # fmt: skip
            samples.append(
                StatsSample(
                    schema=STATS_SCHEMA, room_sid=room_sid, participant_sid=m.sid,
                    region="us1", timestamp=START_MS + second * 1000 + m.phase_ms, seq=m._seq,
                    connection_state="closed" if second == m.leave_s else "connected",
                    candidate_pair=CandidatePair(
                        available_outgoing_bitrate=8_000_000.0, current_round_trip_time=0.04
                    ),
                    outbound=outbound, inbound=inbound, topology=topology,
                )
            )  # fmt: skip
    samples.sort(key=lambda s: (s.timestamp, s.participant_sid))
    return samples


def four_members() -> list[Member]:
    """PA01..PA04, their stats taken 0, 250, 500 and 750 ms into each second."""
    return [Member(f"PA0{i + 1}", phase_ms=250 * i) for i in range(4)]
