"""Rollups and alerts, rooms and regions, driven through the one per-key protocol that the
generic room stage will drive (``pipelines.quality.room.logic``).

Over random level histories and sweeps, for every kind: a snapshot restored at any point
continues exactly as the state it was taken from; a batch applied in two parts emits what it
emits whole; :meth:`~KeyLogic.advance` emits nothing before :meth:`~KeyLogic.due_at`; and
the sweeps' peeks at a room's bytes agree with ``due_at``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.quality.alerting import AlertRule, AlertRules, RoomSummary
from pipelines.quality.alerting.due import load_room_due as load_alerts_due
from pipelines.quality.alerting.logic import RegionAlertsKind, RoomAlertsKind
from pipelines.quality.rollups import MinuteRollup
from pipelines.quality.rollups.due import load_room_due as load_rollups_due
from pipelines.quality.rollups.logic import RegionRollupsKind, RoomRollupsKind
from pipelines.quality.room.level import RoomLevel
from pipelines.quality.room.logic import NOW, KeyLogic, LogicKind

T0 = int(datetime(2026, 12, 7, 10, 0, tzinfo=UTC).timestamp() * 1000)
RULES = AlertRules(
    room=AlertRule(at_or_below=2, min_share=0.5, min_degraded=1, sustain_s=2.0,
                   resolve_after_s=3.0, reopen_cooldown_s=4.0),
    participant=AlertRule(at_or_below=1, min_share=1.0, min_degraded=1, sustain_s=3.0,
                          resolve_after_s=2.0, reopen_cooldown_s=5.0),
    region=AlertRule(at_or_below=2, min_share=0.2, min_degraded=1, sustain_s=4.0,
                     resolve_after_s=3.0, reopen_cooldown_s=6.0),
    update_interval_s=2.0,
    allowed_lateness_s=1.0,
)  # fmt: skip
ROOMS = ("RM_a", "RM_b", "RM_c")
REGIONS = {"RM_a": "eu", "RM_b": "eu", "RM_c": "us"}


@st.composite
def scripts(draw: Any) -> list[tuple]:
    """Batches of level events (a few participants per room, time moving on with some
    disorder) and sweeps at stream times around the events' (going back now and then)."""
    ops: list[tuple] = []
    now = T0
    serial = 0
    for _ in range(draw(st.integers(1, 14))):
        if draw(st.integers(0, 3)) == 0:
            now += draw(st.integers(0, 90_000))
            ops.append(("tick", now - draw(st.sampled_from([0, 0, 0, 20_000]))))
            continue
        records = []
        for _ in range(draw(st.integers(1, 6))):
            now += draw(st.integers(0, 4_000))
            room = draw(st.sampled_from(ROOMS))
            serial += 1
            records.append(
                RoomLevel(
                    event_id=f"e{serial}" if draw(st.integers(0, 9)) else "e1",  # replays
                    room_sid=room,
                    participant_sid=f"{room}-p{draw(st.integers(0, 2))}",
                    region=REGIONS[room],
                    timestamp=now - draw(st.sampled_from([0, 0, 1_500, 70_000])),
                    level=draw(st.integers(0, 5)),
                    departed=draw(st.integers(0, 7)) == 0,
                )
            )
        ops.append(("batch", records, now))
    return ops


Check = Callable[[LogicKind, KeyLogic, int], None]
"""Called with each key's logic before a sweep advances it."""


class Stages:
    """A room kind and its region kind, keyed and swept the way a room stage would: the
    room's outputs of the region's input type go on to the region at the same stream time."""

    def __init__(
        self, room: LogicKind, region: LogicKind, to_region: type, *, split: bool = False
    ) -> None:
        self.kinds = (room, region)
        self.to_region = to_region
        self.split = split
        self.keys: tuple[dict[str, KeyLogic], dict[str, KeyLogic]] = ({}, {})
        self.out: list[Any] = []

    def feed(self, level: int, records: list, stream_time: int) -> None:
        kind, logics = self.kinds[level], self.keys[level]
        by_key: dict[str, list] = {}
        for record in records:
            by_key.setdefault(kind.key_of(record), []).append(record)
        for key, batch in by_key.items():
            logic = logics.get(key) or kind.start(batch[0], stream_time)
            half = len(batch) // 2 if self.split else len(batch)
            out = logic.apply(batch[:half], stream_time) + logic.apply(batch[half:], stream_time)
            self._emit(level, out, stream_time)
            self._keep(logics, key, logic)

    def tick(self, stream_time: int, check: Check | None = None) -> None:
        for level in (0, 1):
            logics = self.keys[level]
            for key in sorted(logics):
                logic = logics[key]
                if check is not None:
                    check(self.kinds[level], logic, stream_time)
                self._emit(level, logic.advance(stream_time), stream_time)
                self._keep(logics, key, logic)

    def restore(self) -> None:
        self.keys = tuple(  # type: ignore[assignment]
            {key: kind.restore(logic.snapshot()) for key, logic in logics.items()}
            for kind, logics in zip(self.kinds, self.keys, strict=True)
        )

    def snapshots(self) -> list[dict[str, bytes]]:
        return [{key: logic.snapshot() for key, logic in logics.items()} for logics in self.keys]

    def _emit(self, level: int, out: list, stream_time: int) -> None:
        self.out.extend(out)
        if level == 0:
            onward = [o for o in out if isinstance(o, self.to_region)]
            if onward:
                self.feed(1, onward, stream_time)

    @staticmethod
    def _keep(logics: dict[str, KeyLogic], key: str, logic: KeyLogic) -> None:
        if logic.is_idle():
            logics.pop(key, None)
        else:
            logics[key] = logic


def rollups(**kw: Any) -> Stages:
    return Stages(RoomRollupsKind(), RegionRollupsKind(), MinuteRollup, **kw)


def alerts(**kw: Any) -> Stages:
    return Stages(RoomAlertsKind(RULES), RegionAlertsKind(RULES), RoomSummary, **kw)


KINDS = {"rollups": rollups, "alerts": alerts}


def run(stages: Stages, ops: list[tuple], restore_at: int | None = None, check: Any = None):
    for i, op in enumerate(ops):
        if i == restore_at:
            stages.restore()
        if op[0] == "batch":
            stages.feed(0, op[1], op[2])
        else:
            stages.tick(op[1], check)
    return stages.out, stages.snapshots()


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), ops=scripts(), data=st.data())
def test_a_snapshot_restored_at_any_point_continues_as_the_state(kind, ops, data) -> None:
    restore_at = data.draw(st.integers(0, len(ops)))
    assert run(KINDS[kind](), ops, restore_at) == run(KINDS[kind](), ops)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), ops=scripts())
def test_a_batch_applied_in_two_parts_emits_what_it_emits_whole(kind, ops) -> None:
    assert run(KINDS[kind](split=True), ops) == run(KINDS[kind](), ops)


def _around_due(logic: KeyLogic, stream_time: int) -> list[int]:
    """The sweep's stream time, and just before and at the key's due time."""
    due = logic.due_at()
    return [stream_time] if due is None or due == NOW else [stream_time, due - 1, due]


def _nothing_before_due(kind: LogicKind, logic: KeyLogic, stream_time: int) -> None:
    due = logic.due_at()
    for at in _around_due(logic, stream_time):
        if due is None or at < due:  # advancing a copy: the run goes on unchanged
            assert kind.restore(logic.snapshot()).advance(at) == []


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), ops=scripts())
def test_advance_emits_nothing_before_due_at(kind, ops) -> None:
    run(KINDS[kind](), ops, check=_nothing_before_due)


def _peek_agrees(kind: LogicKind, logic: KeyLogic, stream_time: int) -> None:
    due = logic.due_at()
    name = type(logic).__name__
    for at in _around_due(logic, stream_time):
        expected = due is not None and due <= at
        if name == "RoomAlertsLogic":
            lateness = int(RULES.allowed_lateness_s * 1000)
            assert load_alerts_due(logic.snapshot()).due(at - lateness, RULES) == expected
        elif name == "RoomRollupsLogic":
            lateness = logic.state.allowed_lateness_ms  # type: ignore[attr-defined]
            assert load_rollups_due(logic.snapshot()).due(at - lateness) == expected


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), ops=scripts())
def test_the_sweeps_peek_at_a_rooms_bytes_agrees_with_due_at(kind, ops) -> None:
    run(KINDS[kind](), ops, check=_peek_agrees)


def test_both_stages_emit_through_the_protocol() -> None:
    """A room degraded for a minute: the rollups close its minute, the alerts open and the
    regions hear of both (the properties above would pass on stages that emit nothing)."""
    records = [RoomLevel(f"e{i}", "RM_a", f"p{i}", "eu", T0 + 1_000 * i, 1) for i in range(2)]
    for make, emitted in ((rollups, {"MinuteRollup"}), (alerts, {"AlertEvent", "RoomSummary"})):
        stages = make()
        stages.feed(0, records, T0 + 1_000)
        stages.tick(T0 + 70_000)
        assert {type(o).__name__ for o in stages.out} >= emitted
        assert stages.keys[1], "the region got its room's outputs"
    out, _ = run(alerts(), [("batch", records, T0 + 1_000), ("tick", T0 + 70_000)])
    assert {(a.kind, a.status) for a in out if not isinstance(a, RoomSummary)} >= {
        ("room_degraded", "opened"), ("participant_stuck", "opened"),
        ("region_degraded", "opened"),
    }  # fmt: skip
