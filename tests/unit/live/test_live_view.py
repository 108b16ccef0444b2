"""The live demo's terminal view at 80 columns, its alerts, its changes and its plain lines."""

from __future__ import annotations

import io

from rich.console import Console

from pipelines.live.view import (
    Change,
    LiveState,
    ParticipantView,
    alert_view,
    pack,
    progress_line,
    render,
)


def _busy_state() -> LiveState:
    """A demo in full swing: 12 rooms of 6 in 3 regions, big counters, a flood of alerts."""
    state = LiveState()
    for r, region in enumerate(["eu-west", "us-east", "ap-south"] * 4):
        room = f"RM-{region}-{r // 3 + 1:02d}"
        for i in range(1, 7):
            state.participants[f"PA-{room[3:]}-{i}"] = ParticipantView(room, region, i % 6, None)
    state.samples_sent, state.simulated_s = 1_234_567, 1_200
    state.event_ids.update(str(i) for i in range(123_456))
    state.dead_letters = 12
    state.rows = {"level_changes": 123_456, "current_levels": 72, "room_rollups": 14_400,
                  "region_rollups": 3_600, "alerts": 61}
    state.services = {"worker": "running (pid 12345)", "sink": "running (pid 12346)",
                      "web": "running (pid 12347)"}
    for i in range(1, 60):
        state.note_alert(f"p{i}", alert_view(
            "participant_stuck", "opened", region="eu-west", room_sid="RM-eu-west-01",
            participant_sid=f"PA-eu-west-01-{i}", degraded=1, participants=1))
    state.note_alert("room", alert_view("room_degraded", "opened", region="eu-west",
                                        room_sid="RM-eu-west-01", participant_sid=None,
                                        degraded=3, participants=5))
    state.note_alert("region", alert_view("region_degraded", "updated", region="us-east",
                                          room_sid=None, participant_sid=None, degraded=7,
                                          participants=24))
    return state


def _text(state: LiveState, width: int) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None).print(render(state, width))
    return buffer.getvalue()


def test_view_fits_80_columns_without_splitting_a_counter() -> None:
    text = _text(_busy_state(), 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    for whole in ("samples sent 1234567", "level events 123456 (0.0/s)", "dead letters 12",
                  "alerts 61 (61 open)", "changes 123456", "room minutes 14400",
                  "region minutes 3600", "worker: running (pid 12345)"):
        assert any(whole in line for line in text.splitlines()), whole
    for room in ("eu-west-01", "us-east-04", "ap-south-02"):
        assert room in text


def test_room_and_region_alerts_show_through_a_flood_of_participant_alerts() -> None:
    text = _text(_busy_state(), 80)
    assert "room degraded eu-west-01: opened (3/5 degraded)" in text
    assert "region degraded us-east: updated (7/24 degraded)" in text
    assert "participant stuck PA-eu-west-01-59 in eu-west-01: opened" in text
    assert "participant stuck RM-" not in text  # a participant alert names the participant
    assert "... 56 more alerts" in text


def test_only_real_changes_are_listed() -> None:
    state = LiveState()
    for previous, level in ((None, 5), (5, 3), (3, 3), (3, 2), (2, 2)):
        state.note_change(Change(0.0, "PA-1", "RM-1", previous, level, "video.recv.fractionLost"))
    assert [(c.previous, c.level) for c in state.recent] == [(None, 5), (5, 3), (3, 2)]
    text = _text(state, 80)
    assert "3 → 3" not in text and "3 → 2" in text


def test_pack_keeps_items_whole() -> None:
    assert pack(["aaaa", "bbbb", "cccc"], 11) == ["aaaa · bbbb", "cccc"]
    assert pack(["a" * 30, "b"], 10) == ["a" * 30, "b"]


def test_progress_line_is_plain_text() -> None:
    line = progress_line(_busy_state())
    assert line.startswith("simulated 1200 s: samples 1234567, level events 123456")
    assert "alerts 61 (61 open); rows: changes 123456" in line
    assert "\x1b" not in line and "\n" not in line
