"""What a simulation contains: rooms of participants on real networks, and a script of events.

A :class:`Scenario` is plain data. :func:`default_scenario` builds the demo's fleet: rooms
across three regions with a mix of 5G, 4G, 3G and DSL users, audio-only participants, late
joiners and leavers, and a script that shows every kind of trouble once, including the
*incident*: most of one room collapsing at once, long enough to open a room alert and short
enough for it to resolve within a two-minute run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from pipelines.simulate.network import GilbertElliott

REGIONS = ("eu-west", "us-east", "ap-south")

VIDEO_TARGET_BPS: dict[int, float] = {180: 150_000.0, 360: 500_000.0, 720: 2_500_000.0}
"""Encoder target by frame height: libwebrtc's simulcast table (video/config/simulcast.cc),
the same numbers the engine uses as nominal demand."""
HD_HEIGHT = 720


@dataclass(frozen=True, slots=True)
class NetworkProfile:
    """A kind of access network: which real traces it draws from and its loss/jitter models."""

    name: str
    traces: tuple[str, ...]
    uplink_ratio: float
    """Uplink capacity as a share of the trace (most traces measured the downlink)."""
    loss: GilbertElliott
    jitter_floor_s: float


PROFILES: dict[str, NetworkProfile] = {
    p.name: p
    for p in (
        NetworkProfile(
            "5g",
            ("5gophers/car-driving-trace-1-sprint", "5gophers/car-driving-trace-2-sprint",
             "opennetlab/5G_12mbps"),
            uplink_ratio=0.5, loss=GilbertElliott(0.002, 0.5, 0.001, 0.05), jitter_floor_s=0.002,
        ),
        NetworkProfile(
            "4g", ("opennetlab/4G_3mbps",),
            uplink_ratio=0.9, loss=GilbertElliott(0.003, 0.5, 0.002, 0.06), jitter_floor_s=0.004,
        ),
        NetworkProfile(
            "3g",
            ("norway-3g/norway_bus_1", "norway-3g/norway_car_1", "norway-3g/norway_ferry_1",
             "norway-3g/norway_metro_1", "norway-3g/norway_train_1"),
            uplink_ratio=0.6, loss=GilbertElliott(0.005, 0.4, 0.003, 0.07), jitter_floor_s=0.008,
        ),
        NetworkProfile(
            "dsl",
            ("fcc/trace_10322_http---edition.cnn.com", "fcc/trace_11332_http---www.facebook.com",
             "opennetlab/WIRED_900kbs"),
            uplink_ratio=0.5, loss=GilbertElliott(0.002, 0.5, 0.001, 0.05), jitter_floor_s=0.003,
        ),
    )
}


@dataclass(frozen=True, slots=True)
class ParticipantSpec:
    """One participant: where, on what network, what media, when present."""

    participant_sid: str
    room_sid: str
    region: str
    profile: str
    video_height: int | None
    """Published camera height; None = audio only (publishes and subscribes to audio only)."""
    recv_layer_bps: float = 500_000.0
    """Per subscribed video: the simulcast layer the SFU forwards to this participant."""
    join_s: int = 0
    leave_s: int | None = None
    phase_ms: int = 0
    """Offset of its stats timer within each second (clients are not in lockstep)."""
    topology: Literal["sfu", "p2p"] | None = None
    """What its samples say of the call's topology (None: they do not say)."""

    @property
    def audio_only(self) -> bool:
        return self.video_height is None


EventKind = Literal["collapse", "loss_burst", "reconnect", "video_height", "uplink_loss"]
"""``uplink_loss`` loses ``extra_loss`` of what the participant sends only: through the SFU
it reaches each of its subscribers on top of their own downlink (a bad publisher)."""


@dataclass(frozen=True, slots=True)
class ScriptedEvent:
    """Something that happens to one participant from ``start_s`` until ``end_s``."""

    kind: EventKind
    participant_sid: str
    start_s: int
    end_s: int
    capacity_factor: float = 1.0
    extra_loss: float = 0.0
    video_height: int | None = None
    """For ``video_height``: the new height from ``start_s``; the old one returns at ``end_s``."""
    label: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    """Participants and the script; ``incident_room`` is the room meant to raise an alert."""

    participants: tuple[ParticipantSpec, ...]
    events: tuple[ScriptedEvent, ...] = ()
    incident_room: str | None = None
    rooms: tuple[str, ...] = field(default=())

    def room_of(self, participant_sid: str) -> str:
        return next(p.room_sid for p in self.participants if p.participant_sid == participant_sid)


def incident_events(
    room: list[ParticipantSpec], start_s: int, end_s: int, share: float = 0.75
) -> list[ScriptedEvent]:
    """The room-wide incident: a collapse with heavy loss for at least ``share`` (and 3) of it."""
    affected = max(3, -(-len(room) * share // 1))
    return [
        ScriptedEvent(
            "collapse", p.participant_sid, start_s, end_s,
            capacity_factor=0.08, extra_loss=0.12, label="incident",
        )
        for p in room[: int(affected)]
    ]


def _participant(
    rng: random.Random, sid: str, room: str, region: str, profile: str, **extra: object
) -> ParticipantSpec:
    height: int | None
    if profile == "dsl" or rng.random() < 0.15:
        height = None
    elif profile == "3g":
        height = 180 if rng.random() < 0.5 else 360
    else:
        height = 360
    layer = 150_000.0 if profile in ("3g", "dsl") else 500_000.0
    return ParticipantSpec(
        sid, room, region, profile, height, recv_layer_bps=layer,
        phase_ms=rng.randrange(0, 900, 10), **extra,  # type: ignore[arg-type]
    )


def default_scenario(
    rooms: int = 12,
    participants: tuple[int, int] = (4, 6),
    seed: int = 0,
    incident: tuple[int, int] = (20, 60),
) -> Scenario:
    """The demo's fleet; at least 2 rooms. Room 0 (eu-west) has the incident."""
    if rooms < 2:
        raise ValueError("the default scenario needs at least 2 rooms")
    rng = random.Random(f"scenario:{seed}")
    lo, hi = participants
    specs: list[ParticipantSpec] = []
    events: list[ScriptedEvent] = []
    room_sids: list[str] = []
    mixes = {
        "eu-west": ("5g", "5g", "5g", "4g", "3g"),
        "us-east": ("5g", "5g", "5g", "4g", "dsl"),
        "ap-south": ("5g", "5g", "4g", "4g", "3g"),
    }
    for r in range(rooms):
        region = REGIONS[r % len(REGIONS)]
        room_sid = f"RM-{region}-{r // len(REGIONS) + 1:02d}"
        room_sids.append(room_sid)
        size = max(hi - 1, lo) if r == 0 else rng.randint(lo, hi)
        members = []
        weak_used: set[str] = set()
        for i in range(size):
            sid = f"PA-{room_sid.removeprefix('RM-')}-{i + 1}"
            if r == 0:
                profile = "5g"  # the incident room is healthy before and after
            else:
                profile = rng.choice(mixes[region])
                # At most one 4G and one 3G/DSL link per room: trouble stays individual
                # (no accidental room alerts) except where the script says otherwise.
                kind = "cellular" if profile == "4g" else "weak" if profile != "5g" else ""
                if kind and kind in weak_used:
                    profile = "5g"
                weak_used.add(kind)
            members.append(_participant(rng, sid, room_sid, region, profile))
        if r == 0:  # video for everyone in the incident room, so the collapse shows
            members = [
                ParticipantSpec(
                    m.participant_sid, m.room_sid, m.region, m.profile, 360,
                    m.recv_layer_bps, phase_ms=m.phase_ms,
                )
                for m in members
            ]
            events += incident_events(members, *incident)
        specs += members

    def first(room_index: int, position: int = 0) -> ParticipantSpec | None:
        if room_index >= rooms:
            return None
        members = [s for s in specs if s.room_sid == room_sids[room_index]]
        return members[min(position, len(members) - 1)]

    script: list[tuple[int, int, str, dict[str, object]]] = [
        (1, 0, "video_height", {"start_s": 30, "end_s": 90, "video_height": HD_HEIGHT,
                                "label": "switches to HD"}),
        (2, 1, "reconnect", {"start_s": 40, "end_s": 44, "label": "reconnects"}),
        (3, 0, "loss_burst", {"start_s": 35, "end_s": 45, "extra_loss": 0.10,
                              "label": "loss burst"}),
        (4, 2, "collapse", {"start_s": 50, "end_s": 70, "capacity_factor": 0.15,
                            "label": "bandwidth collapse"}),
    ]
    for room_index, position, kind, params in script:
        target = first(room_index, position)
        if target is not None:
            if kind == "video_height" and target.audio_only:
                specs[specs.index(target)] = target = ParticipantSpec(
                    target.participant_sid, target.room_sid, target.region, "5g", 360,
                    phase_ms=target.phase_ms,
                )
            events.append(
                ScriptedEvent(kind, target.participant_sid, **params)  # type: ignore[arg-type]
            )
    for room_index, join_s in ((min(5, rooms - 1), 15), (min(6, rooms - 1), 70)):
        room_sid = room_sids[room_index]
        region = next(s.region for s in specs if s.room_sid == room_sid)
        sid = f"PA-{room_sid.removeprefix('RM-')}-late{join_s}"
        specs.append(_participant(rng, sid, room_sid, region, "4g", join_s=join_s))
    for room_index, leave_s in ((min(7, rooms - 1), 80), (min(8, rooms - 1), 100)):
        leaver = first(room_index, 1)
        if leaver is not None and leaver.leave_s is None and leaver.join_s == 0:
            specs[specs.index(leaver)] = ParticipantSpec(
                leaver.participant_sid, leaver.room_sid, leaver.region, leaver.profile,
                leaver.video_height, leaver.recv_layer_bps, leave_s=leave_s,
                phase_ms=leaver.phase_ms,
            )
    return Scenario(tuple(specs), tuple(events), room_sids[0], tuple(room_sids))


def bad_publisher_scenario(
    start_s: int = 20, end_s: int = 60, loss: float = 0.15, region: str = "eu-west"
) -> Scenario:
    """Whose network (docs/levels.md): one SFU room of four on good 5G, all with video,
    where the first participant's uplink loses ``loss`` from ``start_s`` to ``end_s``. Only
    that publisher's level should fall; its three subscribers' events name it."""
    room_sid = f"RM-{region}-sfu"
    members = tuple(
        ParticipantSpec(
            f"PA-{region}-sfu-{i + 1}", room_sid, region, "5g", 360, phase_ms=250 * i,
            topology="sfu",
        )
        for i in range(4)
    )
    event = ScriptedEvent(
        "uplink_loss", members[0].participant_sid, start_s, end_s, extra_loss=loss,
        label="bad publisher uplink",
    )  # fmt: skip
    return Scenario(members, (event,), None, (room_sid,))


def demo_scenario(
    rooms: int = 12, participants: tuple[int, int] = (4, 6), seed: int = 0
) -> Scenario:
    """The live demo's fleet: :func:`default_scenario` plus the whose-network room of
    :func:`bad_publisher_scenario` in us-east (``RM-us-east-sfu``, its samples say ``sfu``):
    its first publisher's uplink loses 15 % from 20 s to 60 s, and the dashboards show its
    three subscribers "limited by PA-us-east-sfu-1's uplink" while only the publisher falls.
    The bench and the tests keep :func:`default_scenario` (nothing there says its topology)."""
    base = default_scenario(rooms, participants, seed=seed)
    sfu = bad_publisher_scenario(region="us-east")
    return Scenario(
        base.participants + sfu.participants, base.events + sfu.events, base.incident_room,
        base.rooms + sfu.rooms,
    )  # fmt: skip
