"""Pages fit the data: the default range starts at the first data; one "limited by" per row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from pipelines.web.views import SHORTEST_FITTED, fitted_range, view_from_row

NOW = datetime(2026, 12, 7, 12, 0, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_a_young_system_gets_a_range_from_its_first_minute() -> None:
    span = fitted_range(NOW, NOW - timedelta(minutes=3, seconds=10), HOUR)
    assert span.start == datetime(2026, 12, 7, 11, 57, tzinfo=UTC) and span.end == NOW


def test_no_data_or_old_data_keeps_the_hour() -> None:
    assert fitted_range(NOW, None, HOUR).start == NOW - HOUR
    assert fitted_range(NOW, NOW - 2 * HOUR, HOUR).start == NOW - HOUR


@given(st.integers(min_value=0, max_value=4 * 3600))
def test_fitted_range_is_between_a_minute_and_the_hour(age_s: int) -> None:
    span = fitted_range(NOW, NOW - timedelta(seconds=age_s), HOUR)
    assert SHORTEST_FITTED <= span.end - span.start <= HOUR
    assert span.start <= max(NOW - timedelta(seconds=age_s), NOW - HOUR)  # covers the data


def _row(limited_by: str | None, stats: dict) -> dict:
    return {"participant_sid": "P", "room_sid": "R", "region": "eu", "event_id": "P:1",
            "ts": NOW, "level": 3, "previous_level": 5, "audio_send": 5, "audio_recv": 5,
            "video_send": 5, "video_recv": 3, "limited_by": limited_by, "stats": stats}


def test_the_named_component_shows_the_rows_limiting_metric() -> None:
    # A tie at level 3: the lowest-level rule alone would pick bandwidth (first on ties).
    recv = {"bandwidth": {"level": 3}, "fractionLost": {"level": 3}, "latency": {"level": 5}}
    view = view_from_row(_row("video.recv.fractionLost", {"video": {"recvStats": recv}}))
    assert view["limitedBy"] == "video.recv.fractionLost"
    assert view["video"]["recvLimitedBy"] == "fractionLost"
    assert view_from_row(_row(None, {"video": {"recvStats": recv}}))["video"][
        "recvLimitedBy"] == "bandwidth"
    # A limit elsewhere leaves this component's own choice alone.
    other = view_from_row(_row("audio.send.latency", {"video": {"recvStats": recv}}))
    assert other["video"]["recvLimitedBy"] == "bandwidth"
    assert other["audio"]["sendLimitedBy"] == "latency"
