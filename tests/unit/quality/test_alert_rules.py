"""Alert rules: lifecycle, hysteresis and no-storm properties (pure core, event time)."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.contracts import LevelEvent, MediaLevels, decode_alert, encode
from pipelines.contracts.level import LEVEL_SCHEMA, Cause
from pipelines.quality.alerting import (
    AlertRules,
    RegionAlerts,
    RoomAlerts,
    RoomSummary,
    load_alert_rules,
    max_opens,
)

T0 = 1_763_900_000_000
S = 1000
RULES = AlertRules()


class Seq:
    """Level events with increasing sequence numbers per participant."""

    def __init__(self) -> None:
        self.seq: dict[str, int] = {}

    def __call__(self, pid: str, at_s: float, level: int, *, room: str = "RM1",
                 limited_by: str | None = "video.send.bandwidth",
                 departed: bool = False) -> LevelEvent:  # fmt: skip
        self.seq[pid] = self.seq.get(pid, 0) + 1
        return LevelEvent(
            schema=LEVEL_SCHEMA,  # type: ignore[arg-type]
            event_id=f"{pid}:{self.seq[pid]}",
            room_sid=room,
            participant_sid=pid,
            region="us1",
            timestamp=T0 + int(at_s * S),
            level=level,
            previous_level=None,
            audio=MediaLevels(),
            video=MediaLevels(),
            limited_by=None if level == 5 else limited_by,
            departed=departed,
        )


def run(events: list[LevelEvent], until_s: float | None = None, rules: AlertRules = RULES):
    room = RoomAlerts(events[0].room_sid, events[0].region)
    out = []
    for e in events:
        alerts, _ = room.apply(e, rules)
        out.extend(alerts)
    if until_s is not None:
        out.extend(room.advance(T0 + int(until_s * S), rules)[0])
    return room, out


def room_alerts(alerts):
    return [a for a in alerts if a.kind == "room_degraded"]


def test_room_degrading_then_recovering_opens_once_and_resolves_after_the_hold() -> None:
    ev = Seq()
    events = [ev("A", 0, 5), ev("B", 0, 5), ev("C", 0, 4), ev("A", 10, 2), ev("B", 12, 1,
              limited_by="video.recv.fractionLost"), ev("A", 50, 5), ev("B", 52, 4)]  # fmt: skip
    room, out = run(events, until_s=100)
    alerts = room_alerts(out)
    assert [a.status for a in alerts] == ["opened", "resolved"]
    opened, resolved = alerts
    assert opened.timestamp == T0 + 27 * S  # degraded since 12 s (2 of 3), sustained 15 s
    assert opened.alert_id == resolved.alert_id == f"room_degraded:RM1:{T0 + 27 * S}"
    assert (opened.participants, opened.degraded, opened.share) == (3, 2, 0.6667)
    assert [w.participant_sid for w in opened.worst] == ["B", "A"]
    assert opened.worst[0].limited_by == "video.recv.fractionLost"
    assert opened.limiting_metrics == {"video.send.bandwidth": 1, "video.recv.fractionLost": 1}
    assert resolved.resolved_at == resolved.timestamp == T0 + 70 * S  # false at 50 s + 20 s
    for a in alerts:  # every event satisfies the contract
        assert decode_alert(encode(a)) == a
    assert not room.open_alerts


def test_a_short_recovery_inside_the_hold_keeps_one_alert_open() -> None:
    ev = Seq()
    events = [ev("A", 0, 2), ev("B", 0, 2), ev("A", 30, 5), ev("A", 40, 2), ev("A", 80, 5),
              ev("B", 80, 5)]  # fmt: skip
    _, out = run(events, until_s=200)
    assert [a.status for a in room_alerts(out)] == ["opened", "resolved"]
    assert room_alerts(out)[1].timestamp == T0 + 100 * S


def test_a_lone_bad_participant_is_not_a_degraded_room_but_gets_stuck_alert() -> None:
    ev = Seq()
    events = [ev("A", 0, 5), ev("B", 0, 1), ev("C", 0, 5), ev("B", 45, 4)]
    _, out = run(events, until_s=120)
    assert room_alerts(out) == []
    stuck = [a for a in out if a.kind == "participant_stuck"]
    assert [(a.status, a.timestamp) for a in stuck] == [("opened", T0 + 30 * S),
                                                        ("resolved", T0 + 65 * S)]  # fmt: skip
    assert stuck[0].participant_sid == "B" and stuck[0].room_sid == "RM1"
    assert "stuck at level 1" in stuck[0].message


def test_stuck_participant_leaving_resolves_at_once() -> None:
    ev = Seq()
    _, out = run([ev("A", 0, 0), ev("A", 40, 0, departed=True)], until_s=100)
    assert [(a.status, a.timestamp) for a in out] == [("opened", T0 + 30 * S),
                                                      ("resolved", T0 + 40 * S)]  # fmt: skip


def test_updates_only_on_material_change_and_not_too_often() -> None:
    ev = Seq()
    people = [ev(p, 0, 5) for p in "ABCDEFGHIJ"]
    bad = [ev(p, 1, 2) for p in "ABCDE"]  # 50 %
    more = [ev("F", 20, 2)]  # 60 %: material (>= 10 points) at 20 s, opened at 16 s
    wobble = [ev("F", 30, 3), ev("F", 31, 2)]  # within the interval, back to what was sent
    worse = [ev("A", 40, 0)]  # worst level changed: material
    _, out = run(people + bad + more + wobble + worse, until_s=50)
    alerts = room_alerts(out)
    assert [(a.status, (a.timestamp - T0) // S) for a in alerts] == [
        ("opened", 16), ("updated", 26), ("updated", 40)]  # fmt: skip
    assert alerts[1].degraded == 6 and alerts[2].worst[0].level == 0


def test_replayed_level_events_change_nothing() -> None:
    ev = Seq()
    events = [ev("A", 0, 2), ev("B", 0, 2)]
    _, out = run(events + events, until_s=30)
    assert [a.status for a in room_alerts(out)] == ["opened"]


def test_state_round_trips_through_the_table_encoding() -> None:
    from pipelines.quality.alerting import dump_room_alerts, load_room_alerts

    ev = Seq()
    room, _ = run([ev("A", 0, 2), ev("B", 0, 2)], until_s=20)
    again = load_room_alerts(dump_room_alerts(room))
    assert again == room and again.open_alerts == room.open_alerts


def test_region_sums_rooms_with_its_own_thresholds() -> None:
    region = RegionAlerts("us1")
    out = []
    # 40 participants in 4 rooms; 3 rooms with 4 bad each = 12 bad (30 %)
    for i in range(4):
        bad = 4 if i < 3 else 0
        out += region.apply(RoomSummary(f"R{i}", "us1", T0, 10, bad), RULES)
    out += region.advance(T0 + 29 * S, RULES)
    assert out == []
    out += region.advance(T0 + 30 * S, RULES)
    assert [(a.status, a.degraded, a.participants) for a in out] == [("opened", 12, 40)]
    out += region.apply(RoomSummary("R0", "us1", T0 + 40 * S, 10, 0), RULES)  # 8/40 = 20 %
    out += region.advance(T0 + 99 * S, RULES)
    assert out[-1].status == "opened"
    out += region.advance(T0 + 100 * S, RULES)
    assert [a.status for a in out] == ["opened", "resolved"]
    assert out[-1].alert_id == out[0].alert_id == f"region_degraded:us1:{T0 + 30 * S}"


def test_rules_load_from_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"room": {"sustain_s": 5}, "worst_count": 3}))
    rules = load_alert_rules(path, {"room.resolve_after_s": 7.5, "participant.sustain_s": None})
    assert rules.room.sustain_s == 5 and rules.room.resolve_after_s == 7.5
    assert rules.room.min_share == 0.5 and rules.worst_count == 3
    assert rules.participant.sustain_s == 30
    path.write_text(json.dumps({"room": {"sustain": 5}}))
    with pytest.raises(ValueError, match="sustain"):
        load_alert_rules(path)
    with pytest.raises(ValueError, match="min_share"):
        load_alert_rules(None, {"room.min_share": 0})


# -- properties ----------------------------------------------------------------------------------

# A room of four: a script of (seconds since previous step, participant index, level).
steps = st.lists(
    st.tuples(st.integers(0, 40), st.integers(0, 3), st.sampled_from([0, 1, 2, 3, 4, 5])),
    min_size=1, max_size=60,
)  # fmt: skip


def simulate(script, rules: AlertRules = RULES):
    ev = Seq()
    room = RoomAlerts("RM1", "us1")
    out = []
    t = 0.0
    for pid in "ABCD":
        out += room.apply(ev(pid, 0, 5), rules)[0]
    for dt, who, level in script:
        t += dt
        out += room.apply(ev("ABCD"[who], t, level), rules)[0]
        out += room.advance(T0 + int((t + dt / 2) * S), rules)[0]  # sweeps between events
    for pid in "ABCD":  # everyone recovers at the end
        out += room.apply(ev(pid, t + 1, 5), rules)[0]
    out += room.advance(T0 + int((t + 1000) * S), rules)[0]
    return room, out, t


@settings(max_examples=200, deadline=None)
@given(steps)
def test_lifecycle_is_well_formed(script) -> None:
    _, out, _ = simulate(script)
    for kind_alerts in (room_alerts(out), [a for a in out if a.kind == "participant_stuck"]):
        open_ids: dict[str, str] = {}  # scope -> open alert id
        seen: set[str] = set()
        for a in kind_alerts:
            scope = a.participant_sid or a.room_sid or a.region
            if a.status == "opened":
                assert scope not in open_ids, "opened twice while open"
                assert a.alert_id not in seen, "an alert id was reused"
                open_ids[scope] = a.alert_id
                seen.add(a.alert_id)
            else:
                assert open_ids.get(scope) == a.alert_id, f"{a.status} of an alert not open"
                if a.status == "resolved":
                    del open_ids[scope]
                    assert a.resolved_at == a.timestamp >= a.opened_at
        assert not open_ids, "after everyone recovered, every opened alert has resolved"


@settings(max_examples=200, deadline=None)
@given(steps)
def test_resolution_only_after_the_hold_and_opening_only_after_sustain(script) -> None:
    _, out, _ = simulate(script)
    alerts = room_alerts(out)
    for a in alerts:
        if a.status == "resolved":
            assert a.timestamp - a.opened_at >= RULES.room.resolve_after_s * S
    opened = [a.timestamp for a in alerts if a.status == "opened"]
    resolved = [a.timestamp for a in alerts if a.status == "resolved"]
    for later, earlier in zip(opened[1:], resolved, strict=False):
        assert later - earlier >= RULES.room.reopen_cooldown_s * S


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(2, 40))
def test_flapping_never_storms(bad_s: int, good_s: int, cycles: int) -> None:
    ev = Seq()
    room = RoomAlerts("RM1", "us1")
    out = [a for pid in "AB" for a in room.apply(ev(pid, 0, 5), RULES)[0]]
    t = 0
    for _ in range(cycles):
        out += room.apply(ev("A", t, 1), RULES)[0] + room.apply(ev("B", t, 2), RULES)[0]
        t += bad_s
        out += room.apply(ev("A", t, 5), RULES)[0] + room.apply(ev("B", t, 5), RULES)[0]
        t += good_s
    opens = [a for a in room_alerts(out) if a.status == "opened"]
    assert len(opens) <= max_opens(t * S, RULES.room)
    if bad_s < RULES.room.sustain_s:
        assert opens == []
    if good_s < RULES.room.resolve_after_s and bad_s >= RULES.room.sustain_s:
        assert len(opens) == 1


def test_events_reordered_within_the_lateness_give_the_same_alerts() -> None:
    ev = Seq()
    events = [ev("A", 0, 5), ev("B", 0, 5), ev("A", 10, 2), ev("B", 12, 1), ev("A", 50, 5),
              ev("B", 52, 4)]  # fmt: skip
    _, in_order = run(events, until_s=100)
    shuffled = [events[1], events[3], events[0], events[2], events[5], events[4]]  # B first
    _, reordered = run(shuffled, until_s=100)
    assert in_order == reordered and [a.status for a in room_alerts(in_order)] == [
        "opened", "resolved"]  # fmt: skip


def test_a_demo_incident_from_20_to_60_s_opens_and_resolves_within_two_minutes() -> None:
    """Real samples through the real engine: three of four participants lose their uplink
    from 20 s to 60 s (what the demo's simulator scripts); the room alert must open and
    resolve inside a 2-minute run with the default rules."""
    from pipelines.quality import Engine, load_thresholds
    from pipelines.testing import Conditions, ScriptedParticipant

    people = [
        ScriptedParticipant(
            f"PA{i}", room_sid="RM-demo", publish_video=True, subscribe_video=1, start_ms=T0
        )
        for i in range(4)
    ]
    bad = Conditions(uplink=300_000, loss=0.08, rtt=0.3)
    engine = Engine(load_thresholds(None))
    room = RoomAlerts("RM-demo", "us1")
    out = []
    for second in range(120):
        for i, p in enumerate(people):
            trouble = i < 3 and 20 <= second < 60
            for event in engine.feed(p.step(bad if trouble else Conditions())):
                out += room.apply(event, RULES)[0]
        out += room.advance(T0 + (second + 1) * S, RULES)[0]
    alerts = [a for a in room_alerts(out) if a.status != "updated"]  # updates may come
    assert [a.status for a in alerts] == ["opened", "resolved"], alerts
    opened, resolved = alerts
    assert 20 * S <= opened.timestamp - T0 <= 45 * S
    assert 60 * S <= resolved.timestamp - T0 <= 110 * S
    assert opened.degraded == 3 and opened.worst[0].limited_by


def test_a_publisher_whose_uplink_explains_the_room_gets_the_alert_not_the_room() -> None:
    """Whose network (issue 27): three subscribers name PA02's uplink; their dips do not make
    a degraded room, and PA02, at a bad level (2, not the stuck rule's 1), gets a participant
    alert whose message says whose uplink limits how many."""
    ev = Seq()
    cause = Cause("upstream", "PA02", "MT-PA02-video")

    def named(pid: str, at_s: float, level: int) -> LevelEvent:
        return msgspec.structs.replace(ev(pid, at_s, level), cause=cause)

    events = [ev(p, 0, 5) for p in ("PA01", "PA02", "PA03", "PA04")]
    events += [ev("PA02", 20, 2, limited_by="video.send.fractionLost")]
    # The onset: the subscribers dip before their views name the publisher (view lag)...
    events += [named(p, 21, 2) for p in ("PA01", "PA03", "PA04")]
    # ... and are back once attributed, still naming it.
    events += [named(p, 30, 4) for p in ("PA01", "PA03", "PA04")]
    events += [ev("PA02", 60, 5)] + [ev(p, 62, 5) for p in ("PA01", "PA03", "PA04")]
    _, out = run(events, until_s=150)
    assert room_alerts(out) == []
    stuck = [a for a in out if a.kind == "participant_stuck"]
    assert [(a.status, a.participant_sid) for a in stuck] == [
        ("opened", "PA02"), ("resolved", "PA02")]  # fmt: skip
    assert stuck[0].timestamp == T0 + 51 * S  # named by 3 since 21 s, sustained 30 s
    assert stuck[0].message.startswith("PA02's uplink limits 3 subscribers: level 2")
    assert "video.send.fractionLost" in stuck[0].message
    # Without the causes the same levels are a degraded room, and nobody is stuck.
    plain = Seq()
    events = [plain(p, 0, 5) for p in ("PA01", "PA02", "PA03", "PA04")]
    events += [plain("PA02", 20, 2)] + [plain(p, 21, 2) for p in ("PA01", "PA03", "PA04")]
    events += [plain("PA02", 60, 5)] + [plain(p, 62, 5) for p in ("PA01", "PA03", "PA04")]
    _, out = run(events, until_s=150)
    statuses = [a.status for a in room_alerts(out)]
    assert statuses[0] == "opened" and statuses[-1] == "resolved"
    assert not [a for a in out if a.kind == "participant_stuck"]


def test_a_cause_naming_someone_not_in_the_room_explains_nothing() -> None:
    ev = Seq()
    cause = Cause("upstream", "PA99", "MT-PA99-video")
    events = [ev(p, 0, 5) for p in ("PA01", "PA02", "PA03")]
    events += [msgspec.structs.replace(ev(p, 10, 2), cause=cause) for p in ("PA01", "PA02")]
    _, out = run(events, until_s=60)
    assert [a.status for a in room_alerts(out)] == ["opened"]
