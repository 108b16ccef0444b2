"""Alerts through the real worker (and the sink): scripted rooms, flapping, a restart.

Level events are produced straight onto the alerting room stage's input topic (where the
levels agent routes its own events) with scripted event times, so the rules' seconds pass in
event time, not in test time; a last event of each room moves its time past every hold. Half
of them travel as bundles, as the levels agent sends them, and half as lone records.
"""

from __future__ import annotations

import json
import time

from pipelines.contracts import LevelEvent, MediaLevels
from pipelines.contracts.level import LEVEL_SCHEMA
from pipelines.streaming.alerts import levels_by_room_topic

S = 1000


class Script:
    """Level events with scripted times (seconds after ``t0``) and per-participant seqs."""

    def __init__(self) -> None:
        self.t0 = int(time.time() * 1000) - 3_600_000  # an hour ago: event time, not wall time
        self.seq: dict[str, int] = {}
        self.events: list[LevelEvent] = []

    def __call__(self, room: str, pid: str, at_s: float, level: int) -> None:
        self.seq[pid] = self.seq.get(pid, 0) + 1
        self.events.append(
            LevelEvent(
                schema=LEVEL_SCHEMA,  # type: ignore[arg-type]
                event_id=f"{pid}:{self.seq[pid]}",
                room_sid=room,
                participant_sid=pid,
                region="us1",
                timestamp=self.t0 + int(at_s * S),
                level=level,
                previous_level=None,
                audio=MediaLevels(),
                video=MediaLevels(),
                limited_by=None if level == 5 else "video.send.bandwidth",
            )
        )

    def produce(self, kafka_io, settings) -> None:
        """In time order across rooms, as live traffic is: a partition's time is its newest."""
        events = sorted(self.events, key=lambda e: e.timestamp)
        kafka_io.produce_to_room_stage(settings, levels_by_room_topic(settings), events)
        self.events = []


def alerts_of(records, kind: str = "room_degraded") -> dict[str, list[dict]]:
    """Alert events by room (or region), in topic order."""
    out: dict[str, list[dict]] = {}
    for r in records:
        a = json.loads(r.value)
        if a["kind"] == kind:
            out.setdefault(a.get("roomSid") or a["region"], []).append(a)
    return out


def statuses(alerts: list[dict]) -> list[str]:
    return [a["status"] for a in alerts]


def test_degrading_room_opens_one_alert_and_resolves_flapping_rooms_do_not_storm(
    sink_settings, kafka_io, start_worker, sinks, db_query, wait_until
):
    settings = sink_settings
    play = Script()
    for pid in "ABC":  # RA: degrades (2 of 3 at <= 2 from 12 s), recovers at 52 s
        play("RA", pid, 0, 5)
    play("RA", "A", 10, 2)
    play("RA", "B", 12, 1)
    play("RA", "A", 50, 5)
    play("RA", "B", 52, 4)
    # RF1 flaps faster than the sustain time: never an alert.
    # RF2 is bad for 20 s, good for 10 s, ten times: one alert that stays open, then resolves.
    for room, bad_s, good_s in (("RF1", 10, 10), ("RF2", 20, 10)):
        t = 0
        for _ in range(10):
            play(room, f"{room}a", t, 1)
            play(room, f"{room}b", t, 2)
            t += bad_s
            play(room, f"{room}a", t, 5)
            play(room, f"{room}b", t, 5)
            t += good_s
    play("RA", "C", 200, 4)  # RA's time moves past every hold
    play("RF2", "RF2a", 600, 4)
    play.produce(kafka_io, settings)
    start_worker(settings)
    sinks(settings)

    def done(records) -> bool:
        by_room = alerts_of(records)
        return all(statuses(by_room.get(r, []))[-1:] == ["resolved"] for r in ("RA", "RF2"))

    records = kafka_io.read(settings.topic_alerts, until=done, timeout=90)
    by_room = alerts_of(records)
    assert statuses(by_room["RA"]) == ["opened", "resolved"], by_room["RA"]
    opened, resolved = by_room["RA"]
    assert opened["alertId"] == resolved["alertId"] == f"room_degraded:RA:{play.t0 + 27 * S}"
    assert (opened["participants"], opened["degraded"]) == (3, 2)
    assert [w["participantSid"] for w in opened["worst"]] == ["B", "A"]
    assert resolved["resolvedAt"] == play.t0 + 70 * S
    assert "RF1" not in by_room
    assert statuses(by_room["RF2"]) == ["opened", "resolved"]
    assert by_room["RF2"][1]["resolvedAt"] == play.t0 + (10 * 30 - 10 + 20) * S
    stuck = alerts_of(records, "participant_stuck")
    assert statuses(stuck["RA"]) == ["opened", "resolved"]  # B at level 1 from 12 s to 52 s
    assert stuck["RA"][0]["participantSid"] == "B"
    assert stuck["RA"][0]["timestamp"] == play.t0 + 42 * S

    def stored() -> list[tuple]:
        return db_query(
            settings.database_url,
            "SELECT alert_id, status, (extract(epoch FROM resolved_at) * 1000)::bigint FROM alerts"
            " WHERE room_sid = 'RA' ORDER BY kind",
        )

    wait_until(lambda: [r[1] for r in stored()] == ["resolved", "resolved"], 60, "stored alerts")
    assert stored()[1] == (resolved["alertId"], "resolved", resolved["resolvedAt"])

    # A replayed "opened" (at-least-once) never turns a resolved alert back into an open one.
    marker = {**opened, "alertId": "room_degraded:RM-marker:1", "roomSid": "RM-marker"}
    kafka_io.produce(
        settings.topic_alerts,
        [(b"RA", json.dumps(opened).encode()), (b"RA", json.dumps(marker).encode())],
    )
    wait_until(
        lambda: db_query(settings.database_url, "SELECT count(*) FROM alerts"
                         " WHERE room_sid = 'RM-marker'")[0][0] == 1,
        60, "the marker alert",
    )  # fmt: skip
    assert stored()[1] == (resolved["alertId"], "resolved", resolved["resolvedAt"])


def test_worker_restart_while_an_alert_is_open_neither_reopens_nor_loses_it(
    worker_settings, kafka_io, start_worker
):
    settings = worker_settings
    play = Script()
    play("RR", "A", 0, 2)
    play("RR", "B", 0, 1)
    play("RR", "C", 0, 5)
    play("RR", "C", 20, 4)  # the room's time passes 15 s: the alert opens
    play.produce(kafka_io, settings)
    worker = start_worker(settings)
    records = kafka_io.read(
        settings.topic_alerts, until=lambda r: "RR" in alerts_of(r), timeout=90
    )
    assert statuses(alerts_of(records)["RR"]) == ["opened"]
    worker.stop(timeout=30)
    assert worker.returncode == 0, worker.log_tail()

    play("RR", "C", 25, 2)  # still degraded after the restart: no second "opened"
    play("RR", "A", 40, 5)
    play("RR", "B", 40, 5)
    play("RR", "C", 40, 5)
    play("RR", "C", 900, 4)
    play.produce(kafka_io, settings)
    start_worker(settings)

    def resolved(records) -> bool:
        return statuses(alerts_of(records).get("RR", []))[-1:] == ["resolved"]

    records = kafka_io.read(settings.topic_alerts, until=resolved, timeout=90)
    rr = alerts_of(records)["RR"]
    opened = [a for a in rr if a["status"] == "opened"]
    # At-least-once may repeat an event, but only as an exact copy: one alert id throughout.
    assert {a["alertId"] for a in rr} == {f"room_degraded:RR:{play.t0 + 15 * S}"}
    assert all(a == opened[0] for a in opened)
    assert rr[-1]["status"] == "resolved" and rr[-1]["openedAt"] == play.t0 + 15 * S
