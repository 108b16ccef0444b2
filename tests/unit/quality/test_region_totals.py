"""A region's running totals decide exactly as summing every room per summary did.

:class:`RegionAlerts` keeps its counts beside the state instead of summing its rooms for each
summary (quadratic in a region-wide degradation). The reference below is that old algorithm,
kept here verbatim in spirit: same decisions, same events, for any order of summaries, with
the state encoded and decoded (so the totals rebuilt) at any point.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.contracts.alert import AlertParticipant
from pipelines.quality.alerting import (
    AlertRules,
    RegionAlerts,
    RoomSummary,
    Snapshot,
    _event,
    dump_region_alerts,
    load_region_alerts,
)

T0 = 1_763_900_000_000
RULES = AlertRules()


class ReferenceRegion:
    """The region as it was: every count summed over every room, every time."""

    def __init__(self, region: str) -> None:
        self.state = RegionAlerts(region)

    def snapshot(self) -> Snapshot:
        rooms = self.state.rooms.values()
        worst = sorted(
            (p for r in rooms for p in r.worst),
            key=lambda p: (p.level, p.room_sid or "", p.participant_sid),
        )[: RULES.worst_count]
        metrics: dict[str, int] = {}
        for r in rooms:
            for name, n in r.limiting_metrics.items():
                metrics[name] = metrics.get(name, 0) + n
        return Snapshot(
            sum(r.participants for r in rooms), sum(r.degraded for r in rooms), worst, metrics
        )

    def apply(self, summary: RoomSummary) -> list:
        s = self.state
        previous = s.rooms.get(summary.room_sid)
        if previous is not None and summary.timestamp < previous.timestamp:
            return []
        now = max(summary.timestamp, s.clock_ms)
        out = self.advance(now)
        if summary.participants:
            s.rooms[summary.room_sid] = summary
        else:
            s.rooms.pop(summary.room_sid, None)
        s.tracker.observe(now, self.snapshot().meets(RULES.region))
        return out + self.advance(now)

    def advance(self, now: int) -> list:
        s = self.state
        now = max(now, s.clock_ms)
        s.clock_ms = now
        t = s.tracker
        if t.since is None or not (t.condition or t.is_open):
            return []
        snap = self.snapshot()
        return [
            _event("region_degraded", status, at, alert_id, t, snap, s.region)
            for status, at, alert_id in t.advance(
                now, RULES.region, RULES, snap, f"region_degraded:{s.region}"
            )
        ]


@st.composite
def summaries(draw: st.DrawFn) -> list[tuple[str, object]]:
    """Room summaries (and clock advances) of a few rooms over a few minutes."""
    steps: list[tuple[str, object]] = []
    at = T0
    for _ in range(draw(st.integers(1, 60))):
        at += draw(st.sampled_from([0, 500, 3_000, 12_000, 40_000]))
        if draw(st.integers(0, 5)) == 0:
            steps.append(("advance", at))
            continue
        room = f"R{draw(st.integers(0, 5))}"
        participants = draw(st.integers(0, 8))
        degraded = draw(st.integers(0, participants))
        levels = draw(st.lists(st.integers(0, 2), max_size=min(degraded, 3)))
        worst = [
            AlertParticipant(
                participant_sid=f"{room}-P{i}",
                level=lv,
                room_sid=room,
                limited_by="video.send.bandwidth",
            )
            for i, lv in enumerate(sorted(levels))
        ]
        metrics = {"video.send.bandwidth": len(levels)} if levels else {}
        late = draw(st.sampled_from([0, 0, 0, 2_000]))  # now and then a replayed older one
        steps.append(
            ("apply", RoomSummary(room, "us1", at - late, participants, degraded, worst, metrics))
        )
    return steps


@settings(max_examples=300, deadline=None)
@given(summaries(), st.integers(0, 60))
def test_running_totals_decide_as_summing_every_room(steps, reload_at: int) -> None:
    region, reference = RegionAlerts("us1"), ReferenceRegion("us1")
    got, want = [], []
    for i, (kind, value) in enumerate(steps):
        if i == reload_at:  # a restart: the state from its bytes, totals rebuilt
            region = load_region_alerts(dump_region_alerts(region))
        if kind == "apply":
            got += region.apply(value, RULES)  # type: ignore[arg-type]
            want += reference.apply(value)  # type: ignore[arg-type]
        else:
            got += region.advance(value, RULES)  # type: ignore[arg-type]
            want += reference.advance(value)  # type: ignore[arg-type]
        assert region == reference.state
    assert got == want


def test_a_region_wide_degradation_opens_one_alert_naming_the_worst() -> None:
    """The alert's snapshot is still the whole region's: every room's counts, worst first."""
    region = RegionAlerts("us1")
    out = []
    for i in range(1000):
        worst = [AlertParticipant(participant_sid=f"P{i}", level=1 + i % 2, room_sid=f"R{i}")]
        out += region.apply(RoomSummary(f"R{i:04d}", "us1", T0, 5, 3, worst), RULES)
    out += region.advance(T0 + int(RULES.region.sustain_s * 1000), RULES)
    assert [(a.status, a.participants, a.degraded) for a in out] == [("opened", 5000, 3000)]
    assert [p.level for p in out[0].worst] == [1] * RULES.worst_count
    assert [p.participant_sid for p in out[0].worst] == ["P0", "P10", "P100", "P102", "P104"]
