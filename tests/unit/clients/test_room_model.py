"""The Python room client's pure parts: SSE framing and snapshot/level events to changes."""

from __future__ import annotations

from pipelines.clients.room import RoomModel, SseEvent, SseParser


def view(sid: str, level: int, ts: int, **extra) -> dict:
    return {"participantSid": sid, "roomSid": "RM1", "timestamp": ts, "level": level,
            "departed": False, **extra}


def snapshot(*views: dict) -> SseEvent:
    import json

    return SseEvent("snapshot", json.dumps({"participants": list(views)}), "1")


def level(v: dict) -> SseEvent:
    import json

    return SseEvent("level", json.dumps(v), str(v["timestamp"]))


def test_sse_parser_frames_events_ids_and_skips_comments():
    parser = SseParser()
    lines = ["retry: 2000", "", ": ping", "id: 42", "event: level", 'data: {"a":', "data: 1}", ""]
    events = [e for e in map(parser.feed, lines) if e is not None]
    assert events == [SseEvent("level", '{"a":\n1}', "42")]


def test_current_levels_first_then_only_real_changes():
    model = RoomModel("RM1")
    first = model.apply(snapshot(view("PA1", 5, 10), view("PA2", 3, 10)))
    assert [(c.participant_sid, c.level, c.previous_level, c.current) for c in first] == [
        ("PA1", 5, None, True), ("PA2", 3, None, True)]
    assert model.apply(level(view("PA2", 3, 11))) == []  # nothing visible changed
    assert model.apply(level(view("PA2", 5, 9))) == []  # older than what was reported
    change = model.apply(level(view("PA2", 1, 12)))[0]
    assert (change.level, change.previous_level, change.current) == (1, 3, False)


def test_a_resumed_feed_yields_what_was_missed_once_and_who_left():
    model = RoomModel("RM1")
    model.apply(snapshot(view("PA1", 5, 10), view("PA2", 3, 10)))
    # after a reconnect: the replayed change, then the snapshot that already contains it
    replayed = model.apply(level(view("PA2", 2, 20, replayed=True)))
    again = model.apply(snapshot(view("PA2", 2, 20)))
    assert [(c.participant_sid, c.level) for c in replayed] == [("PA2", 2)]
    assert [(c.participant_sid, c.departed, c.previous_level) for c in again] == [
        ("PA1", True, 5)]
    assert set(model.participants) == {"PA2"}


def test_departure_events_remove_the_participant():
    model = RoomModel("RM1")
    model.apply(snapshot(view("PA1", 5, 10)))
    gone = model.apply(level(view("PA1", 5, 30, departed=True)))
    assert [(c.departed, c.level) for c in gone] == [(True, None)]
    assert model.participants == {}
    assert model.apply(SseEvent("level", "not json", None)) == []
