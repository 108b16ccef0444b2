"""Pure parts of the analysts' API: times, placeholders, quality measures, ranking, trends."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.analytics import frames
from pipelines.analytics.embedded import running_postgres_url
from pipelines.analytics.fetch import bind, conform
from pipelines.analytics.timerange import TimeRange, parse_time
from pipelines.cli import _attach_time_values

NOW = datetime(2026, 11, 23, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("-2h", NOW - timedelta(hours=2)),
        ("-30m", NOW - timedelta(minutes=30)),
        ("-1.5h", NOW - timedelta(minutes=90)),
        ("-7d", NOW - timedelta(days=7)),
        ("-1w", NOW - timedelta(weeks=1)),
        ("+10s", NOW + timedelta(seconds=10)),
        ("2026-11-02", datetime(2026, 11, 2, tzinfo=UTC)),
        ("2026-11-02T10:05", datetime(2026, 11, 2, 10, 5, tzinfo=UTC)),
        ("2026-11-02 10:05:30", datetime(2026, 11, 2, 10, 5, 30, tzinfo=UTC)),
        ("2026-11-02T10:05Z", datetime(2026, 11, 2, 10, 5, tzinfo=UTC)),
        ("2026-11-02T11:05+01:00", datetime(2026, 11, 2, 10, 5, tzinfo=UTC)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    parsed = parse_time(text, NOW)
    assert parsed == expected
    assert parsed.tzinfo is not None


@pytest.mark.parametrize("text", ["yesterday", "-2x", "2026-13-01", ""])
def test_parse_time_says_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="relative time like"):
        parse_time(text, NOW)


def test_time_range_is_half_open_and_not_empty() -> None:
    span = TimeRange.parse("-2h", "now", NOW)
    assert span.seconds == 7200
    assert span.label() == "20261123T1030Z-20261123T1230Z"
    with pytest.raises(ValueError, match="empty time range"):
        TimeRange.parse("now", "-1h", NOW)


def test_cli_keeps_relative_times_as_values() -> None:
    assert _attach_time_values(["report", "--from", "-2h", "--to", "-1h", "--room", "-R"]) == [
        "report", "--from=-2h", "--to=-1h", "--room", "-R",
    ]


def test_bind_translates_placeholders_and_leaves_casts() -> None:
    query = "SELECT :a::text, x FROM t WHERE ts >= :start AND y = :a AND z LIKE 'a%'"
    text, values = bind(query, {"a": "v", "start": 1}, "libpq")
    assert text == "SELECT $1::text, x FROM t WHERE ts >= $2 AND y = $1 AND z LIKE 'a%'"
    assert values == ("v", 1)
    text, values = bind(query, {"a": "v", "start": 1}, "psycopg")
    assert text == (
        "SELECT %(a)s::text, x FROM t WHERE ts >= %(start)s AND y = %(a)s AND z LIKE 'a%%'"
    )
    assert values == {"a": "v", "start": 1}
    with pytest.raises(KeyError, match=":start"):
        bind(query, {"a": "v"}, "libpq")


def test_conform_gives_empty_results_their_dtypes() -> None:
    empty = conform(pl.DataFrame(), {"region": pl.String, "seconds": pl.Float64})
    assert empty.schema == pl.Schema({"region": pl.String, "seconds": pl.Float64})
    with pytest.raises(ValueError, match="seconds"):
        conform(pl.DataFrame({"region": ["a"]}), {"region": pl.String, "seconds": pl.Float64})


def _seconds(**levels: float) -> dict[str, list[float]]:
    return {c: [float(levels.get(f"l{i}", 0.0))] for i, c in enumerate(frames.SECONDS_AT_LEVEL)}


def test_with_quality_by_hand() -> None:
    out = frames.with_quality(pl.DataFrame(_seconds(l2=180, l4=300, l5=120)))
    row = out.row(0, named=True)
    assert row["participant_seconds"] == 600
    assert row["avg_level"] == pytest.approx(3.6)
    assert row["share_poor"] == pytest.approx(0.3)
    assert row["share_good"] == pytest.approx(0.7)
    nobody = frames.with_quality(pl.DataFrame(_seconds())).row(0, named=True)
    assert nobody["avg_level"] is None and nobody["share_poor"] is None


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=6, max_size=6))
def test_with_quality_bounds(seconds: list[float]) -> None:
    frame = pl.DataFrame({c: [s] for c, s in zip(frames.SECONDS_AT_LEVEL, seconds, strict=True)})
    row = frames.with_quality(frame).row(0, named=True)
    if row["participant_seconds"] > 0:
        assert -1e-9 <= row["avg_level"] <= 5 + 1e-9
        assert row["share_poor"] + row["share_good"] <= 1 + 1e-9
    else:
        assert row["avg_level"] is None


def test_rank_worst_orders_by_poor_share_then_average_and_skips_tiny_scopes() -> None:
    rows = [
        ("A", _seconds(l5=600)),
        ("B", _seconds(l3=600)),
        ("C", _seconds(l2=60, l5=540)),
        ("D", _seconds(l0=30)),  # all poor, but only 30 s: left out
    ]
    frame = pl.concat(
        [pl.DataFrame({"room_sid": [room], **cols}) for room, cols in rows], how="vertical"
    )
    ranked = frames.rank_worst(frame, ["room_sid"], limit=2, min_participant_seconds=60)
    assert ranked["room_sid"].to_list() == ["C", "B"]
    assert ranked["rank"].to_list() == [1, 2]


def test_week_over_week_compares_consecutive_weeks_only() -> None:
    weeks = [datetime(2026, 11, 2, tzinfo=UTC) + timedelta(weeks=w) for w in (0, 1, 3)]
    frame = pl.DataFrame(
        {
            "bucket": weeks,
            "region": ["eu", "eu", "eu"],
            **{c: [0.0, 0.0, 0.0] for c in frames.SECONDS_AT_LEVEL},
        }
    ).with_columns(
        seconds_at_level_5=pl.Series([600.0, 300.0, 600.0]),
        seconds_at_level_2=pl.Series([0.0, 300.0, 0.0]),
    )
    out = frames.week_over_week(frame, ["region"])
    assert out["week"].to_list() == weeks
    assert out["avg_level_change"].to_list() == [None, pytest.approx(-1.5), None]
    assert out["share_poor_change"].to_list() == [None, pytest.approx(0.5), None]


def test_stability_is_pooled_over_participants() -> None:
    participants = pl.DataFrame(
        {
            "region": ["eu", "eu", "us"],
            "present_seconds": [3600.0, 10.0, 0.0],
            "changes": [2, 1, 0],
        }
    )
    out = frames.stability_by(participants, ["region"])
    eu = out.filter(pl.col("region") == "eu").row(0, named=True)
    assert eu["participants"] == 2
    assert eu["changes_per_participant_hour"] == pytest.approx(3 / (3610 / 3600))
    assert out.filter(pl.col("region") == "us")["changes_per_participant_hour"][0] is None


def test_hour_day_matrix() -> None:
    hourly = pl.DataFrame(
        {
            "bucket": [
                datetime(2026, 11, 2, 10, tzinfo=UTC),
                datetime(2026, 11, 3, 23, tzinfo=UTC),
            ],
            **{c: [0.0, 0.0] for c in frames.SECONDS_AT_LEVEL},
        }
    ).with_columns(
        seconds_at_level_4=pl.Series([60.0, 0.0]), seconds_at_level_1=pl.Series([0.0, 60.0])
    )
    matrix = frames.hour_day_matrix(hourly)
    assert matrix.columns == ["day", *(str(h) for h in range(24))]
    assert matrix["day"].to_list() == [date(2026, 11, 2), date(2026, 11, 3)]
    assert matrix["10"].to_list() == [4.0, None]
    assert matrix["23"].to_list() == [None, 1.0]


def test_running_embedded_postgres_is_found_by_its_pid_file(tmp_path: Path) -> None:
    assert running_postgres_url(tmp_path) is None
    pid_file = tmp_path / "postmaster.pid"
    pid_file.write_text(f"{os.getpid()}\n{tmp_path}\n1795472890\n41234\n\n127.0.0.1\n")
    assert running_postgres_url(tmp_path) == (
        "postgresql+psycopg://postgres@127.0.0.1:41234/netquality"
    )
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file.write_text(f"{dead.pid}\n{tmp_path}\n1795472890\n41234\n\n127.0.0.1\n")
    assert running_postgres_url(tmp_path) is None  # stale: left by a crash


def test_report_reads_the_last_demo_postgres_unless_its_own_is_newer(tmp_path):
    import os

    from pipelines.analytics.embedded import report_state_dir

    assert report_state_dir(tmp_path) == tmp_path  # nothing yet: its own (to be started)
    demo = tmp_path / "demo" / "postgres"
    demo.mkdir(parents=True)
    assert report_state_dir(tmp_path) == tmp_path / "demo"  # only the demo's exists
    own = tmp_path / "postgres"
    own.mkdir()
    os.utime(demo, (1_000, 1_000))
    os.utime(own, (2_000, 2_000))
    assert report_state_dir(tmp_path) == tmp_path  # its own was used more recently
    os.utime(demo, (3_000, 3_000))
    assert report_state_dir(tmp_path) == tmp_path / "demo"
