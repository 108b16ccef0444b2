"""Reports that tell the truth: bars as wide as their bucket, titles naming the bucket,
sentences that follow from the numbers, and "no data" where a table is empty (issue 24).

The chart checks read the matplotlib artists of the rendered figure, not its pixels.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib.dates as mdates
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.patches import Rectangle
from rich.console import Console

from pipelines.analytics import frames, plots
from pipelines.analytics.report import Report, print_summary, write_html
from pipelines.analytics.timerange import TimeRange

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


def bucketed(bucket: str, n: int, level: int = 5, seconds: float = 60.0) -> pl.DataFrame:
    row = {c: 0.0 for c in frames.SECONDS_AT_LEVEL}
    return pl.DataFrame([
        {"bucket": T0 + i * STEP[bucket], "region": "eu", **row,
         frames.SECONDS_AT_LEVEL[level]: seconds}
        for i in range(n)
    ])  # fmt: skip


def bars(fig) -> list[Rectangle]:
    (ax,) = fig.axes
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_height() > 0]


@pytest.mark.parametrize(("bucket", "n"), [("minute", 1), ("minute", 5), ("hour", 1),
                                           ("hour", 30), ("day", 3)])  # fmt: skip
def test_each_bar_is_as_wide_as_its_bucket_and_starts_at_it(bucket, n, tmp_path: Path):
    frame = bucketed(bucket, n)
    fig = plots.time_at_level_figure(frame, "t", bucket)
    fig.savefig(tmp_path / "time_at_level.png")  # rendered, as the report does
    drawn = bars(fig)
    assert len(drawn) == n
    width = STEP[bucket].total_seconds() / 86400
    starts = sorted(r.get_x() for r in drawn)
    assert all(r.get_width() == pytest.approx(width) for r in drawn)
    assert starts == pytest.approx([mdates.date2num(T0 + i * STEP[bucket]) for i in range(n)])
    (ax,) = fig.axes
    assert ax.get_xlim() == pytest.approx((starts[0], starts[-1] + width))
    assert ax.get_ylabel() == f"participants (average per {bucket})"


def test_a_one_minute_call_is_one_minute_wide_not_45(tmp_path: Path):
    """The issue's chart: one 1-minute bucket drawn as a 0.03-day (43-minute) block."""
    (bar,) = bars(plots.time_at_level_figure(bucketed("minute", 1, level=4), "t", "minute"))
    assert bar.get_width() * 24 * 60 == pytest.approx(1.0)
    assert bar.get_height() == pytest.approx(1.0)  # 60 participant-seconds in a minute


def test_stacked_heights_are_average_participants():
    frame = bucketed("hour", 2, level=3, seconds=7200.0)  # two participants all hour
    drawn = bars(plots.time_at_level_figure(frame, "t", "hour"))
    assert [r.get_height() for r in drawn] == pytest.approx([2.0, 2.0])


def test_an_empty_chart_says_no_data():
    empty = pl.DataFrame(schema={"bucket": pl.Datetime("us", "UTC"),
                                 **dict.fromkeys(frames.SECONDS_AT_LEVEL, pl.Float64)})  # fmt: skip
    fig = plots.time_at_level_figure(empty, "t", "minute")
    assert [t.get_text() for t in fig.axes[0].texts] == ["no data"]


def report_with(bucket: str, **tables: pl.DataFrame) -> Report:
    span = TimeRange(T0, T0 + timedelta(hours=1))
    report = Report("room", "RM1", None, span, "test", dict(tables), bucket)  # type: ignore[arg-type]
    return report


@pytest.mark.parametrize("bucket", ["minute", "hour", "day"])
def test_the_chart_title_names_the_bucket_the_table_has(bucket):
    title = report_with(bucket).time_at_level_title
    assert f"per {bucket}," in title
    words = set(title.replace(",", " ").split())
    assert not ({"minute", "hour", "day", "hourly"} - {bucket}) & words, title


# -- sentences from the numbers ------------------------------------------------------------------


def totals(*levels_seconds: tuple[int, float]) -> pl.DataFrame:
    row = {c: 0.0 for c in frames.SECONDS_AT_LEVEL}
    for level, seconds in levels_seconds:
        row[frames.SECONDS_AT_LEVEL[level]] += seconds
    return frames.with_quality(pl.DataFrame([{"room_sid": "RM1", **row}]))


NO_METRICS = pl.DataFrame(schema={"region": pl.Utf8, "metric": pl.Utf8, "seconds": pl.Float64,
                                  "share": pl.Float64, "events": pl.Int64})  # fmt: skip


def test_a_room_at_average_4_is_not_every_participant_at_level_5():
    room = totals((4, 600.0))
    assert room["avg_level"].to_list() == [4.0]
    note = frames.below_five_note(room, NO_METRICS)
    assert note == "no cause recorded for 10.0 participant-min below level 5"
    assert "level 5" in note and "every" not in note


def test_every_participant_at_level_5_only_when_all_the_time_was():
    assert frames.below_five_note(totals((5, 600.0)), NO_METRICS) == (
        "nothing: every participant was at level 5"
    )
    assert frames.below_five_note(totals(), NO_METRICS) == "no data"
    some = pl.DataFrame({"region": ["eu"], "metric": ["loss"], "seconds": [60.0],
                         "share": [1.0], "events": [1]})  # fmt: skip
    assert frames.below_five_note(totals((2, 60.0)), some) is None  # the table speaks


@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 10_000)), max_size=8))
def test_the_note_claims_all_at_5_exactly_when_the_numbers_do(parts):
    frame = totals(*parts)
    note = frames.below_five_note(frame, NO_METRICS)
    total = sum(s for _, s in parts)
    below = sum(s for level, s in parts if level < 5)
    assert (note == "nothing: every participant was at level 5") == (total > 0 and below <= 0)
    assert (note == "no data") == (total <= 0)


# -- empty tables say so -------------------------------------------------------------------------


def empty_report() -> Report:
    quality = frames.with_quality(pl.DataFrame(
        schema={"room_sid": pl.Utf8, **dict.fromkeys(frames.SECONDS_AT_LEVEL, pl.Float64)}
    ))  # fmt: skip
    stability = pl.DataFrame(schema={"room_sid": pl.Utf8, "participants": pl.Int64,
                                     "present_seconds": pl.Float64, "changes": pl.Int64,
                                     "changes_per_participant_hour": pl.Float64})  # fmt: skip
    trend = frames.week_over_week(quality.with_columns(bucket=pl.lit(T0)), ["room_sid"])
    return report_with("minute", totals=quality, limiting_metrics=NO_METRICS,
                       stability=stability, week_over_week=trend)  # fmt: skip


def test_empty_tables_print_no_data():
    console = Console(record=True, width=140)
    print_summary(empty_report(), console)
    text = console.export_text()
    for title in ("Time at level", "What held levels below 5", "Stability", "Week over week"):
        section = text.split(title, 1)[1]
        assert "no data" in section.split("\n\n", 1)[0] or "no data" in section[:600], title
    assert text.count("no data") >= 4


def test_the_html_page_says_no_data_for_an_empty_table(tmp_path: Path):
    page = write_html(empty_report(), tmp_path, []).read_text()
    assert page.count("<p>no data</p>") == 4
    assert "time at level" not in page or "(per minute)" in page
