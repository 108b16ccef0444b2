"""The calibration suite: scripted and real calls, the level each should get, and who says so.

Each :class:`Scenario` drives the real engine (scripted participants from
:mod:`pipelines.testing`, or a bundled real browser dump) and reduces the resulting level
timeline to one observed number: the steady level, the lowest level over a span, or the
seconds a recovery took. Its band is what netquality promises; beside it stand the bands
the peers give the same situation (LiveKit's connection-quality scorer, Jitsi's
ConnectionQuality, twilio-voice.js's MOS; how each maps onto 0..5 is in ``docs/levels.md``),
so the table shows where we agree with whom, and where we chose a side. ``netquality
calibrate`` prints it; ``tests/calibration/`` asserts every band.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources

from pipelines.demo_data import RTCSTATS
from pipelines.quality import Engine, Thresholds
from pipelines.testing import Conditions, ScriptedParticipant

PEERS = ("LiveKit", "Jitsi", "Twilio")
"""LiveKit: connectionquality scorer (score cut into our floors; EXCELLENT 5, GOOD 3-4, POOR
1-2, LOST 0). Jitsi: ConnectionQuality percentage (>=85 5, >=60 4, >=40 3, >=20 2, else 1).
Twilio: twilio-voice.js mos.ts R factor (>=80 5, 70-80 4, 60-70 3, 50-60 2, else 1)."""

Band = tuple[int, int]
Timeline = list[tuple[int, int]]
"""(seconds since the first sample, overall level after that sample)."""


@dataclass(frozen=True)
class Scenario:
    """One situation, what we observe of it, the band we promise, and the peers' bands."""

    name: str
    group: str
    run: Callable[[Thresholds], float | None]
    band: tuple[float, float]
    measure: str
    """What the observed number is: "level" (steady), "lowest level", "seconds", "changes"."""
    source: str
    peers: dict[str, Band] = field(default_factory=dict)

    def observe(self, th: Thresholds) -> float | None:
        return self.run(th)


@dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    observed: float | None

    @property
    def ok(self) -> bool:
        lo, hi = self.scenario.band
        return self.observed is not None and lo <= self.observed <= hi

    def agrees(self, peer: str) -> bool | None:
        """Whether our observed level lies in the peer's band (None: the peer has no view)."""
        band = self.scenario.peers.get(peer)
        if band is None or self.observed is None or "level" not in self.scenario.measure:
            return None
        return band[0] <= self.observed <= band[1]


# --- drivers -----------------------------------------------------------------------------


def _timeline(
    participant: ScriptedParticipant,
    script: Iterable[Conditions],
    th: Thresholds,
    between: Callable[[int, ScriptedParticipant], None] | None = None,
) -> Timeline:
    engine = Engine(th)
    out: Timeline = []
    for i, c in enumerate(script):
        if between is not None:
            between(i, participant)
        engine.feed(participant.step(c))
        st = engine.states.get(participant.participant_sid)
        out.append((i, -1 if st is None else st.level))
    return out


def _audio(**kw: object) -> ScriptedParticipant:
    return ScriptedParticipant(  # type: ignore[arg-type]
        "PA-audio", subscribe_audio=1, exact_loss=True, **kw
    )


def _video(**kw: object) -> ScriptedParticipant:
    return ScriptedParticipant(  # type: ignore[arg-type]
        "PA-video", publish_video=True, publish_audio=False, exact_loss=True, **kw
    )


def steady(make: Callable[[], ScriptedParticipant], c: Conditions, seconds: int = 25) -> Callable:
    """The level after ``seconds`` of the same network (steady state)."""

    def run(th: Thresholds) -> float:
        return _timeline(make(), [c] * seconds, th)[-1][1]

    return run


def lowest(
    make: Callable[[], ScriptedParticipant],
    script: list[Conditions],
    after: int = 0,
    between: Callable[[int, ScriptedParticipant], None] | None = None,
) -> Callable:
    """The lowest level from second ``after`` on."""

    def run(th: Thresholds) -> float:
        return min(level for t, level in _timeline(make(), script, th, between) if t >= after)

    return run


def highest(make: Callable[[], ScriptedParticipant], script: list[Conditions], after: int):
    """The highest level from second ``after`` on."""

    def run(th: Thresholds) -> float:
        return max(level for t, level in _timeline(make(), script, th) if t >= after)

    return run


def changes(make: Callable[[], ScriptedParticipant], script: list[Conditions], after: int):
    """How many times the level changed from second ``after`` on (flapping)."""

    def run(th: Thresholds) -> float:
        levels = [level for t, level in _timeline(make(), script, th) if t >= after]
        return float(sum(1 for a, b in itertools.pairwise(levels) if a != b))

    return run


def recovery(make: Callable[[], ScriptedParticipant], bad: Conditions, bad_s: int = 10):
    """Seconds from the end of ``bad_s`` seconds of trouble until the level is 5 again, or
    None when it never is or when a step skipped a level (recovery must be paced)."""

    def run(th: Thresholds) -> float | None:
        script = [Conditions()] * 5 + [bad] * bad_s + [Conditions()] * 40
        line = _timeline(make(), script, th)
        end = 5 + bad_s
        levels = [level for _, level in line]
        if any(b - a > 1 for a, b in zip(levels[end - 1 :], levels[end:], strict=False)):
            return None
        for t, level in line[end:]:
            if level == 5:
                return float(t - end + 1)
        return None

    return run


def dump(name: str, participant: str, after_s: float, how: str = "min") -> Callable:
    """A bundled real call: the lowest (or last) level of one peer connection."""

    def run(th: Thresholds) -> float | None:
        from pipelines.adapters.rtcstats import samples_from_rtcstats_file  # noqa: PLC0415

        dump_file = RTCSTATS / name
        if not dump_file.is_file():
            return None
        with resources.as_file(dump_file) as path:
            samples = list(samples_from_rtcstats_file(path))
        engine = Engine(th)
        levels: list[tuple[float, int]] = []
        t0 = samples[0].timestamp
        for s in samples:
            engine.feed(s)
            if s.participant_sid.endswith(participant):
                st = engine.states.get(s.participant_sid)
                levels.append(((s.timestamp - t0) / 1000, 0 if st is None else st.level))
        if how == "last":
            return levels[-1][1]
        return min(level for t, level in levels if t >= after_s)

    return run


def _ramp(start: float = 300_000.0, rate: float = 1.08, top: float = 4e6) -> list[Conditions]:
    """A bandwidth estimate growing 8 %/s from libwebrtc's 300 kbit/s start (GCC)."""
    return [Conditions(uplink=min(start * rate**i, top)) for i in range(45)]


def _flap(loss: float, every: int, seconds: int) -> list[Conditions]:
    return [Conditions(loss=loss if (i // every) % 2 else 0.0) for i in range(seconds)]


def _stop_camera(i: int, p: ScriptedParticipant) -> None:
    if i == 5:
        p.video_stopped = True


def _add_video_subscription(i: int, p: ScriptedParticipant) -> None:
    if i == 15:
        p.subscribe_video = 2


LK, JI, TW = "LiveKit", "Jitsi", "Twilio"


def _loss(group: str, make: Callable, pct: float, band: Band, lk: Band, ji: Band, tw: Band):
    return Scenario(
        f"{group}: {pct:g} %", group, steady(make, Conditions(loss=pct / 100)), band, "level",
        "LiveKit plw (connectionstats.go:402-427), Jitsi loss table (ConnectionQuality.ts:"
        "332-343), mos.ts", {LK: lk, JI: ji, TW: tw},
    )


SCENARIOS: tuple[Scenario, ...] = (
    # Audio loss ladder: Opus, 50 packets/s (docs/levels.md, research table 7.1).
    _loss("audio loss", _audio, 0, (5, 5), (5, 5), (5, 5), (5, 5)),
    _loss("audio loss", _audio, 1, (5, 5), (5, 5), (5, 5), (5, 5)),
    _loss("audio loss", _audio, 2, (4, 5), (5, 5), (5, 5), (5, 5)),
    _loss("audio loss", _audio, 4, (4, 4), (3, 4), (4, 4), (5, 5)),
    _loss("audio loss", _audio, 6, (3, 4), (3, 4), (3, 3), (4, 4)),
    _loss("audio loss", _audio, 9, (1, 2), (1, 2), (1, 1), (4, 4)),
    _loss("audio loss", _audio, 12, (1, 2), (1, 2), (1, 1), (3, 3)),
    _loss("audio loss", _audio, 20, (1, 1), (1, 2), (1, 1), (1, 1)),
    # Video loss ladder: 1.5 Mbit/s, ~170 packets/s (table 7.2; Jitsi with video on).
    _loss("video loss", _video, 0, (5, 5), (5, 5), (5, 5), (5, 5)),
    _loss("video loss", _video, 1, (5, 5), (5, 5), (5, 5), (5, 5)),
    _loss("video loss", _video, 2, (4, 5), (3, 5), (5, 5), (5, 5)),
    _loss("video loss", _video, 3.5, (3, 4), (3, 4), (5, 5), (5, 5)),
    _loss("video loss", _video, 6, (2, 3), (1, 2), (5, 5), (5, 5)),
    _loss("video loss", _video, 8, (1, 2), (1, 2), (5, 5), (4, 4)),
    _loss("video loss", _video, 10, (1, 2), (1, 2), (2, 2), (4, 4)),
    _loss("video loss", _video, 15, (1, 1), (1, 2), (2, 2), (2, 2)),
    # Delay ladders (audio; table 7.3, 7.4): we side with LiveKit and the E-model's one-way
    # delay (RTT/2) over twilio-voice's full RTT (docs/levels.md).
    *(
        Scenario(f"RTT {rtt} ms", "delay", steady(_audio, Conditions(rtt=rtt / 1000, jitter=0.0)),
                 band, "level", "mos.ts effective latency; LiveKit scorer.go:81-90",
                 {LK: lk, JI: (5, 5), TW: tw})
        for rtt, band, lk, tw in (
            (50, (5, 5), (5, 5), (5, 5)),
            (200, (5, 5), (5, 5), (5, 5)),
            (300, (5, 5), (5, 5), (4, 4)),
            (400, (4, 5), (5, 5), (3, 3)),
            (600, (4, 5), (5, 5), (1, 1)),
            (800, (3, 4), (3, 4), (1, 1)),
            (1000, (2, 3), (3, 4), (1, 1)),
        )
    ),
    *(
        Scenario(f"jitter {j} ms (RTT 50)", "delay",
                 steady(_audio, Conditions(rtt=0.05, jitter=j / 1000)), band, "level",
                 "mos.ts (warns above 30 ms); LiveKit scorer.go:81-90",
                 {LK: lk, JI: (5, 5), TW: tw})
        for j, band, lk, tw in (
            (10, (5, 5), (5, 5), (5, 5)),
            (30, (5, 5), (5, 5), (5, 5)),
            (100, (4, 5), (5, 5), (5, 5)),
            (200, (3, 4), (3, 4), (3, 3)),
        )
    ),
    # Combined impairments add up (table 7.5; LiveKit's own test connectionstats_test.go:363-380).
    Scenario("2 % loss + RTT 400 + jitter 30", "combined",
             steady(_audio, Conditions(loss=0.02, rtt=0.4, jitter=0.03)), (3, 4), "level",
             "LiveKit test asserts GOOD; mos.ts MOS 2.83", {LK: (3, 4), JI: (5, 5), TW: (2, 2)}),
    Scenario("1 % loss + RTT 200 + jitter 20", "combined",
             steady(_audio, Conditions(loss=0.01, rtt=0.2, jitter=0.02)), (4, 5), "level",
             "LiveKit raw 88.5; mos.ts R 79.3", {LK: (5, 5), JI: (5, 5), TW: (4, 4)}),
    Scenario("5 % loss + RTT 300 + jitter 50", "combined",
             steady(_audio, Conditions(loss=0.05, rtt=0.3, jitter=0.05)), (1, 3), "level",
             "LiveKit raw 47; mos.ts R 53.3", {LK: (2, 3), JI: (3, 3), TW: (2, 2)}),
    # Bandwidth against demand (table 7.6): 1.5 Mbit/s video on a flat uplink (no ramp-up).
    *(
        Scenario(f"uplink {int(f * 100)} % of demand", "bandwidth",
                 steady(_video, Conditions(uplink=1_500_000 * f)), band, "level",
                 "Jitsi sent/target (ConnectionQuality.ts:309-386); Twilio docs: HD on a weak "
                 "link is 1", {LK: (5, 5), JI: ji})
        for f, band, ji in (
            (1.0, (5, 5), (5, 5)),
            (0.8, (4, 5), (4, 4)),
            (0.5, (3, 3), (3, 3)),
            (0.3, (2, 2), (2, 2)),
            (0.1, (1, 1), (1, 1)),
        )
    ),
    # Evidence: DTX and a handful of packets (table 7.7).
    Scenario("DTX 10 pkt/s, 10 % loss", "evidence",
             steady(lambda: _audio(audio_packet_rate=10), Conditions(loss=0.1)), (3, 5), "level",
             "LiveKit aplw sqrt(pps/mode) (scorer.go:547-589): GOOD", {LK: (3, 4), JI: (1, 1)}),
    Scenario("1 of 8 packets lost once", "evidence",
             lowest(lambda: _audio(audio_packet_rate=8),
                    [Conditions()] * 5 + [Conditions(loss=0.125)] + [Conditions()] * 5),
             (5, 5), "lowest level", "LiveKit 5 s window: 2.5 % x 3.2 -> EXCELLENT",
             {LK: (5, 5), JI: (5, 5)}),
    Scenario("one 13 % window of ~35 video packets", "evidence",
             lowest(lambda: _video(video_bitrate=300_000, video_height=270),
                    [Conditions()] * 8 + [Conditions(loss=0.134)] + [Conditions()] * 5),
             (4, 5), "lowest level", "LiveKit dilutes it over 5 s: GOOD at worst",
             {LK: (3, 5), JI: (5, 5)}),
    # Recovery (table 7.8): seconds from the end of the trouble back to 5, one level at a time.
    Scenario("recovery after 12 % loss", "recovery",
             recovery(_video, Conditions(loss=0.12)), (10, 20), "seconds",
             "LiveKit 15 s (connectionstats_test.go:122-170); Jitsi ~30 s", {}),
    Scenario("recovery after bandwidth collapse", "recovery",
             recovery(_video, Conditions(uplink=150_000)), (10, 20), "seconds",
             "LiveKit: pause -> POOR, then as after loss", {}),
    Scenario("5 s of 12 % loss, 5 s clean, repeated", "flapping",
             highest(_video, _flap(0.12, 5, 60), after=10), (1, 3), "highest level",
             "LiveKit alternates POOR/GOOD every 5 s; we hold", {LK: (1, 4), JI: (3, 5)}),
    Scenario("5 s of 12 % loss, 5 s clean: changes after 15 s", "flapping",
             changes(_video, _flap(0.12, 5, 60), after=15), (0, 1), "changes",
             "a level that alternates every 5 s says nothing (LiveKit's does)", {}),
    Scenario("1 s of 8 % loss, 1 s clean: changes after 10 s", "flapping",
             changes(_video, _flap(0.08, 1, 40), after=10), (0, 1), "changes",
             "loss judged per 1 s window flapped with every window", {}),
    # Stalls, mute, no tracks, reconnecting (table 7.9).
    Scenario("camera stops (published, unmuted), audio flows", "stall",
             lowest(lambda: _audio(publish_video=True), [Conditions()] * 13,
                    between=_stop_camera), (0, 0),
             "lowest level", "LiveKit dry window POOR then LOST (scorer.go:416-423)",
             {LK: (0, 2)}),
    Scenario("downlink dead, sending goes on", "stall",
             lowest(lambda: _audio(subscribe_video=1),
                    [Conditions()] * 5 + [Conditions(downlink=0.0)] * 8), (0, 0),
             "lowest level", "LiveKit LOST; twilio-video.js#640", {LK: (0, 0)}),
    Scenario("video muted, sends nothing", "stall",
             lowest(lambda: _video(video_muted=True), [Conditions()] * 15), (5, 5),
             "lowest level", "LiveKit: muted scores 100 (scorer.go:268-278)", {LK: (5, 5)}),
    Scenario("nothing published or subscribed", "stall",
             lowest(lambda: ScriptedParticipant("PA-idle", publish_audio=False, exact_loss=True),
                    [Conditions(uplink=1_000, loss=0.3, rtt=2.0)] * 10), (5, 5),
             "lowest level", "Twilio docs: always 5", {LK: (5, 5), JI: (5, 5), TW: (5, 5)}),
    Scenario("reconnecting", "stall",
             lowest(_video, [Conditions()] * 5 + [Conditions(state="reconnecting")]), (0, 0),
             "lowest level", "Twilio docs: 0 network broken", {JI: (0, 0), TW: (0, 0)}),
    # Call start and new streams.
    Scenario("call start: estimate ramps 300 kbit/s -> 2.5 Mbit/s", "call start",
             lowest(lambda: _video(video_bitrate=2_500_000), _ramp()), (4, 5), "lowest level",
             "GCC +8 %/s; Jitsi judges nothing for 10 s, then ramps its target",
             {LK: (5, 5), JI: (2, 5)}),
    Scenario("a second video subscription appears", "call start",
             lowest(lambda: _audio(subscribe_video=1), [Conditions()] * 30,
                    between=_add_video_subscription), (5, 5), "lowest level",
             "LiveKit: a new track starts at 100", {LK: (5, 5)}),
    # The bundled real calls (pipelines/demo_data/rtcstats).
    Scenario("real Chrome P2P call, after 5 s (PC_0)", "real calls",
             dump("google-standard-stats-p2p", "PC_0", 5.0), (3, 5), "lowest level",
             "issue 22: no level <= 2 after ramp-up", {}),
    Scenario("real Chrome P2P call, resumed stream (PC_1)", "real calls",
             dump("google-standard-stats-p2p", "PC_1", 5.0), (3, 5), "lowest level",
             "a resumed stream's first window is an artefact", {}),
    Scenario("real Chrome SFU call (PC_0)", "real calls",
             dump("google-standard-stats-sfu", "PC_0", 5.0), (3, 5), "lowest level", "", {}),
    Scenario("real Firefox SFU call (PC_0)", "real calls",
             dump("firefox97-standard-stats-sfu", "PC_0", 5.0), (3, 5), "lowest level", "", {}),
    Scenario("real call ending in ICE failure (PC_1)", "real calls",
             dump("chrome-standard-pc-failed", "PC_1", 0.0, how="last"), (0, 0), "last level",
             "ICE failed", {}),
)


def run_all(th: Thresholds | None = None) -> list[Outcome]:
    th = th or Thresholds()
    return [Outcome(s, s.observe(th)) for s in SCENARIOS]


def agreement(outcomes: list[Outcome]) -> dict[str, tuple[int, int]]:
    """Per peer: (scenarios where our level lies in the peer's band, scenarios it has a view)."""
    result: dict[str, tuple[int, int]] = {}
    for peer in PEERS:
        views = [o.agrees(peer) for o in outcomes]
        seen = [v for v in views if v is not None]
        result[peer] = (sum(seen), len(seen))
    return result


def report(outcomes: list[Outcome]) -> dict[str, object]:
    """The calibration as one JSON-ready document (``netquality calibrate --json``)."""
    return {
        "scenarios": [
            {
                "group": o.scenario.group,
                "name": o.scenario.name,
                "measure": o.scenario.measure,
                "observed": o.observed,
                "band": list(o.scenario.band),
                "ok": o.ok,
                "peers": {p: list(b) for p, b in o.scenario.peers.items()},
                "agrees": {p: o.agrees(p) for p in o.scenario.peers},
                "source": o.scenario.source,
            }
            for o in outcomes
        ],
        "in_band": sum(o.ok for o in outcomes),
        "agreement": {p: {"agree": a, "of": n} for p, (a, n) in agreement(outcomes).items()},
    }


def table(outcomes: list[Outcome]) -> str:
    """The calibration table as aligned text: one row per scenario, then agreement per peer."""

    def band(b: tuple[float, float] | None) -> str:
        if b is None:
            return "-"
        lo, hi = b
        return f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"

    rows = [("group", "scenario", "ours", "band", "ok", *PEERS, "source")]
    for o in outcomes:
        s = o.scenario
        seen = "n/a" if o.observed is None else f"{o.observed:g}"
        if s.measure == "seconds" and o.observed is not None:
            seen += " s"
        peers = []
        for peer in PEERS:
            agree = o.agrees(peer)
            mark = "" if agree is None else (" =" if agree else " x")
            peers.append(band(s.peers.get(peer)) + mark)
        rows.append((s.group, s.name, seen, band(s.band), "yes" if o.ok else "NO", *peers,
                     s.source))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
             for r in rows]
    passed = sum(o.ok for o in outcomes)
    lines.append("")
    lines.append(f"{passed} of {len(outcomes)} scenarios in band")
    for peer, (agree, seen) in agreement(outcomes).items():
        share = 100 * agree / max(seen, 1)
        lines.append(f"agreement with {peer}: {agree} of {seen} ({share:.0f} %)")
    lines.append("(= our level lies in the peer's band, x it does not; bands: docs/levels.md)")
    return "\n".join(lines)


