"""End to end: a short unattended live demo (simulator -> worker -> sink -> Postgres) leaves
history, current levels and rollups that agree with the events on the topics, and stops clean."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import urllib.request

from rich.console import Console

from pipelines.contracts import decode_level
from pipelines.live.command import with_demo_web
from pipelines.live.demo import LiveDemo


def test_short_demo_leaves_postgres_consistent_with_the_topics(
    sink_settings, kafka_io, db_query
):
    settings, dashboard = with_demo_web(sink_settings)
    demo = LiveDemo(
        settings,
        Console(file=io.StringIO(), width=160),
        rooms=3,
        participants=(3, 3),
        seed=11,
        log_dir=sink_settings.state_dir / "logs",
    )
    rooms = set(demo.scenario.rooms)
    url = sink_settings.database_url
    result: dict = {}
    runner = threading.Thread(target=lambda: result.update(demo.run(None, live=False)))
    started = time.monotonic()
    runner.start()

    # Run until every room has a closed minute in Postgres (minutes close on event time: at
    # most ~70 s after the start), and at least 20 s; then stop it like Ctrl-C does.
    deadline = started + 100
    dashboard_seen = False
    while time.monotonic() < deadline:
        dashboard_seen = dashboard_seen or _dashboard_lists_participants(dashboard, rooms)
        simulated = demo.counts.seconds
        with_rollups = {r for (r,) in db_query(url, "SELECT DISTINCT room_sid FROM room_rollups")}
        # Region minutes come one stage after the room minutes: wait for those too.
        regions_due = {r for (r,) in db_query(url, "SELECT DISTINCT region FROM room_rollups")}
        regions_done = {r for (r,) in db_query(url, "SELECT DISTINCT region FROM region_rollups")}
        if simulated >= 20 and rooms <= with_rollups and regions_due <= regions_done:
            break
        assert runner.is_alive(), "the demo ended on its own"
        time.sleep(1)
    demo.stop.set()
    runner.join(timeout=150)
    assert not runner.is_alive(), "the demo did not stop"

    # Clean stop: both services exited 0 and no process is left.
    assert dashboard_seen, "the web service never listed a room's participants"
    assert result["services"] == {"worker": 0, "sink": 0, "web": 0}
    for proc in demo.services:
        assert not proc.alive()
        try:
            os.kill(proc.pid or 0, 0)
            leftover = True
        except ProcessLookupError:
            leftover = False
        assert not leftover, f"{proc.name} pid {proc.pid} still exists"
    assert result["worker_drained"] and result["sink_drained"]

    # Every level event on the topic has exactly one history row.
    records = kafka_io.read(sink_settings.topic_levels, until=lambda rs: False, timeout=8)
    events = [decode_level(r.value) for r in records]
    ids = {e.event_id for e in events}
    assert len(ids) == result["level_changes_on_topic"] > 0
    rows = db_query(url, "SELECT event_id, count(*) FROM level_changes GROUP BY event_id")
    assert {event_id: n for event_id, n in rows} == dict.fromkeys(ids, 1)

    # current_levels is the last event of every participant still present.
    last = {}
    for e in sorted(events, key=lambda e: (e.participant_sid, e.timestamp)):
        last[e.participant_sid] = e
    expected = {
        sid: (e.event_id, e.level) for sid, e in last.items() if not e.departed
    }
    current = {
        sid: (event_id, level)
        for sid, event_id, level in db_query(
            url, "SELECT participant_sid, event_id, level FROM current_levels"
        )
    }
    assert current == expected
    assert result["current_levels_rows"] == len(expected) == result["participants_present"]

    # Rollups for every room that had participants, and for their regions.
    rolled = {r for (r,) in db_query(url, "SELECT DISTINCT room_sid FROM room_rollups")}
    assert rooms == {e.room_sid for e in events} == rolled
    regions = {r for (r,) in db_query(url, "SELECT DISTINCT region FROM region_rollups")}
    assert regions == {e.region for e in events}

    assert result["samples_sent"] > 0 and result["samples_failed"] == 0
    assert result["dead_letters"] == 0
    assert result["alerts_rows"] == result["alerts_opened"]
    assert result["consistent"] is True


def _dashboard_lists_participants(dashboard: str, rooms: set[str]) -> bool:
    """The demo's web service answers the room API with the printed token."""
    base, _, token = dashboard.partition("/?token=")
    for room in sorted(rooms):
        request = urllib.request.Request(
            f"{base}/api/rooms/{room}/participants", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if json.load(response).get("participants"):
                    return True
        except (OSError, ValueError):
            continue
    return False
