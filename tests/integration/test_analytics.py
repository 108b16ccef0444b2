"""The analysts' API, views and report on a seeded, migrated Postgres with answers known by hand.

The history (written through the real rollup rules by ``pipelines.analytics.sample_history``):

* week 1, Monday 2026-11-02, 10:00-10:10 UTC
  - room R1 (eu-west), P1: level 5, at 10:02 level 2 (video.send.bandwidth), at 10:05 level 4
    (video.recv.fractionLost), leaves at 10:10 -> 120 s at 5, 180 s at 2, 300 s at 4:
    average (600 + 360 + 1200) / 600 = 3.6, poor share 0.3, 2 level changes in 10 min
  - room R2 (eu-west), P2: level 5 for 600 s
  - room R3 (us-east), P3: level 3 (audio.send.latency) for 600 s
* week 2, Monday 2026-11-09, 15:00-15:10 UTC: room R1, P4: level 5 for 600 s

So eu-west in week 1: 1200 participant-s, average 5160 / 1200 = 4.3, poor 180 / 1200 = 0.15;
in week 2: average 5.0, poor 0 (+0.7 and -15 points week over week). Worst room of week 1:
R1 (30 % poor), then R3 (0 % poor, average 3), then R2.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest
from polars.testing import assert_frame_equal
from psycopg import sql
from rich.console import Console
from sqlalchemy.engine import make_url

from pipelines.analytics import QualityHistory
from pipelines.analytics.report import build_report, print_summary, write_report
from pipelines.analytics.sample_history import ScriptedStay, Step, write_history
from pipelines.cli import main
from pipelines.runtime import libpq_url
from pipelines.storage import migrate
from pipelines.storage.models import ANALYST_ROLE

W1 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
W2 = datetime(2026, 11, 9, 15, 0, tzinfo=UTC)
ALL = ("2026-11-01", "2026-11-20")
WEEK1 = ("2026-11-02", "2026-11-09")
DRIVERS = ["adbc", "rows"]


def _at(base: datetime, minutes: float) -> datetime:
    return base + timedelta(minutes=minutes)


STAYS = [
    ScriptedStay(
        "P1", "R1", "eu-west",
        [Step(W1, 5), Step(_at(W1, 2), 2, "video.send.bandwidth"),
         Step(_at(W1, 5), 4, "video.recv.fractionLost")],
        leave=_at(W1, 10),
    ),
    ScriptedStay("P2", "R2", "eu-west", [Step(W1, 5)], leave=_at(W1, 10)),
    ScriptedStay("P3", "R3", "us-east", [Step(W1, 3, "audio.send.latency")], leave=_at(W1, 10)),
    ScriptedStay("P4", "R1", "eu-west", [Step(W2, 5)], leave=_at(W2, 10)),
]


@pytest.fixture(scope="module")
def seeded(postgres: Any) -> Iterator[str]:
    """One migrated database with the history above, shared by this module (read-only)."""
    name = f"nq_analytics_{uuid.uuid4().hex[:10]}"
    admin = libpq_url(postgres.url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(postgres.url).set(database=name).render_as_string(False)
    migrate.upgrade(url)
    write_history(url, STAYS)
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(
            "INSERT INTO alerts (alert_id, kind, status, region, room_sid, opened_at, updated_at,"
            " resolved_at, participants, degraded, share, payload) VALUES"
            " ('A1', 'room_degraded', 'resolved', 'eu-west', 'R1', %s, %s, %s, 1, 1, 1.0,"
            " '{\"message\": \"R1 degraded\"}')",
            (_at(W1, 2), _at(W1, 5), _at(W1, 5)),
        )
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


@pytest.fixture(params=DRIVERS)
def history(request: pytest.FixtureRequest, seeded: str) -> Iterator[QualityHistory]:
    with QualityHistory(seeded, driver=request.param) as h:
        yield h


def _row(frame: pl.DataFrame, **where: Any) -> dict[str, Any]:
    for key, value in where.items():
        frame = frame.filter(pl.col(key) == value)
    assert frame.height == 1, frame
    return frame.row(0, named=True)


def test_time_at_level_by_hand(history: QualityHistory) -> None:
    totals = history.totals(*WEEK1, scope="region")
    eu = _row(totals, region="eu-west")
    assert [eu[f"seconds_at_level_{i}"] for i in range(6)] == [0, 0, 180, 0, 300, 720]
    assert eu["participant_seconds"] == 1200
    assert eu["avg_level"] == pytest.approx(4.3)
    assert eu["share_poor"] == pytest.approx(0.15)

    minutes = history.time_at_level(*ALL, scope="room", bucket="minute", room="R1")
    # 10:00..10:09, and 10:10 which holds only the departure (a change, nobody present)
    assert minutes.filter(pl.col("bucket") < W2).height == 11
    departed = _row(minutes, bucket=_at(W1, 10))
    assert (departed["participant_seconds"], departed["changes"]) == (0, 1)
    assert departed["avg_level"] is None
    at_1003 = _row(minutes, bucket=_at(W1, 3))
    assert at_1003["seconds_at_level_2"] == 60 and at_1003["participant_seconds"] == 60

    stored = history.rollup_minutes(*ALL, scope="room", room="R1")
    assert stored.height == 22 and stored["seconds_at_level_2"].sum() == 180

    hourly = history.time_at_level(*ALL, scope="region", bucket="hour", region="eu-west")
    assert hourly["bucket"].to_list() == [W1, W2]
    assert hourly["participant_seconds"].to_list() == [1200, 600]
    assert hourly["bucket"].dtype == pl.Datetime("us", "UTC")


def test_range_is_clipped_to_the_minute(history: QualityHistory) -> None:
    part = history.totals(_at(W1, 3), _at(W1, 7), scope="room", room="R1")
    r1 = _row(part, room_sid="R1")
    assert (r1["seconds_at_level_2"], r1["seconds_at_level_4"]) == (120, 120)
    metrics = history.limiting_metrics(_at(W1, 3), _at(W1, 7), room="R1")
    assert dict(zip(metrics["metric"], metrics["seconds"], strict=True)) == {
        "bandwidth": 120, "loss": 120,
    }
    # The bandwidth step began before the range: time counts, its event does not.
    assert dict(zip(metrics["metric"], metrics["events"], strict=True)) == {
        "bandwidth": 0, "loss": 1,
    }


def test_worst_rooms_and_regions(history: QualityHistory) -> None:
    worst = history.worst(*WEEK1, scope="room")
    assert worst["room_sid"].to_list() == ["R1", "R3", "R2"]
    assert worst["share_poor"].to_list() == pytest.approx([0.3, 0.0, 0.0])
    assert worst["avg_level"].to_list() == pytest.approx([3.6, 3.0, 5.0])
    assert history.worst(*WEEK1, scope="room", limit=1, region="us-east")["room_sid"].to_list() \
        == ["R3"]
    regions = history.worst(*WEEK1, scope="region")
    assert regions["region"].to_list() == ["eu-west", "us-east"]


def test_week_over_week_trend(history: QualityHistory) -> None:
    trend = history.week_over_week(*ALL, scope="region", region="eu-west")
    assert trend["week"].to_list() == [datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 9,
                                                                                    tzinfo=UTC)]
    assert trend["avg_level"].to_list() == pytest.approx([4.3, 5.0])
    assert trend["avg_level_change"].to_list() == [None, pytest.approx(0.7)]
    assert trend["share_poor_change"].to_list() == [None, pytest.approx(-0.15)]


def test_stability(history: QualityHistory) -> None:
    participants = history.participant_stability(*ALL)
    p1 = _row(participants, participant_sid="P1")
    assert (p1["present_seconds"], p1["changes"], p1["changes_per_hour"]) == (600, 2, 12)
    assert participants["changes"].sum() == 2
    by_region = history.stability(*ALL, by="region")
    eu = _row(by_region, region="eu-west")
    assert (eu["participants"], eu["present_seconds"], eu["changes"]) == (3, 1800, 2)
    assert eu["changes_per_participant_hour"] == pytest.approx(4.0)


def test_hour_of_day(history: QualityHistory) -> None:
    by_hour = history.hour_of_day(*ALL, scope="region", region="eu-west")
    assert by_hour["hour"].to_list() == [10, 15]
    assert by_hour["avg_level"].to_list() == pytest.approx([4.3, 5.0])


def test_limiting_metrics(history: QualityHistory) -> None:
    metrics = history.limiting_metrics(*ALL)
    assert {(r["region"], r["metric"]): (r["seconds"], r["events"], r["share"])
            for r in metrics.iter_rows(named=True)} == {
        ("eu-west", "bandwidth"): (180, 1, pytest.approx(0.375)),
        ("eu-west", "loss"): (300, 1, pytest.approx(0.625)),
        ("us-east", "latency"): (600, 1, 1.0),
    }


def test_both_drivers_give_identical_frames(seeded: str) -> None:
    with QualityHistory(seeded, driver="adbc") as a, QualityHistory(seeded, driver="rows") as r:
        assert a.driver == "adbc" and r.driver == "rows"
        for name, call in [
            ("time_at_level", lambda h: h.time_at_level(*ALL, scope="room", bucket="minute")),
            ("worst", lambda h: h.worst(*ALL)),
            ("rollup_minutes", lambda h: h.rollup_minutes(*ALL, scope="room")),
            ("limiting_metrics", lambda h: h.limiting_metrics(*ALL)),
            ("participant_stability", lambda h: h.participant_stability(*ALL)),
            ("week_over_week", lambda h: h.week_over_week(*ALL, scope="room")),
            ("empty", lambda h: h.time_at_level("2020-01-01", "2020-01-02")),
        ]:
            assert_frame_equal(call(a), call(r), check_exact=False), name


def _view(url: str, query: str) -> pl.DataFrame:
    with QualityHistory(url, driver="rows") as h:
        return h.runner.frame(query)


def test_views_match_the_api(seeded: str) -> None:
    with QualityHistory(seeded) as h:
        region_hourly = h.time_at_level(*ALL, scope="region", bucket="hour")
        room_hourly = h.time_at_level(*ALL, scope="room", bucket="hour")
        metrics = h.limiting_metrics(*ALL)
        participants = h.participant_stability(*ALL)
    columns = ["participant_seconds", "avg_level", "share_poor", "peak_participants", "changes"]
    view = _view(seeded, "SELECT * FROM v_region_time_at_level_hourly ORDER BY hour, region")
    assert_frame_equal(
        view.select(["hour", "region", *columns]),
        region_hourly.rename({"bucket": "hour"}).select(["hour", "region", *columns]),
    )
    view = _view(seeded, "SELECT * FROM v_room_time_at_level_hourly ORDER BY hour, room_sid")
    assert_frame_equal(
        view.select(["hour", "room_sid", *columns]),
        room_hourly.sort(["bucket", "room_sid"]).rename({"bucket": "hour"})
        .select(["hour", "room_sid", *columns]),
    )
    daily = _view(
        seeded,
        "SELECT region, metric, sum(seconds)::float8 AS seconds, sum(events)::int8 AS events"
        " FROM v_limiting_metrics_daily GROUP BY 1, 2 ORDER BY 1, 2",
    )
    assert_frame_equal(daily, metrics.select(["region", "metric", "seconds", "events"]))
    stability = _view(
        seeded,
        "SELECT participant_sid, room_sid, region, present_seconds, changes, changes_per_hour"
        " FROM v_participant_stability ORDER BY participant_sid",
    )
    assert_frame_equal(stability, participants)
    alerts = _view(seeded, "SELECT alert_id, duration_s, is_open, message FROM v_alerts")
    assert alerts.rows() == [("A1", 180.0, False, "R1 degraded")]


def test_analyst_role_reads_the_views(seeded: str) -> None:
    with psycopg.connect(libpq_url(seeded)) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(ANALYST_ROLE)))
        for view in ("v_room_time_at_level_hourly", "v_region_time_at_level_hourly",
                     "v_level_steps", "v_limiting_metrics_daily", "v_participant_stability",
                     "v_alerts"):
            assert conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(view))).fetchone()[0] > 0


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_report_files_charts_and_html(seeded: str, tmp_path: Path) -> None:
    with QualityHistory(seeded) as h:
        report = build_report(h, h.range(*ALL), room=None, region="eu-west")
        console = Console(record=True, width=140)
        print_summary(report, console)
        written = write_report(report, "html", tmp_path)
    text = console.export_text()
    assert "region eu-west" in text and "4.53" in text  # (4.3 x 1200 + 5 x 600) / 1800
    names = {p.name for p in written}
    assert {"time_at_level.png", "hour_of_day.png", "limiting_metrics.png", "report.html",
            "totals.parquet", "worst_rooms.parquet", "week_over_week.parquet"} <= names
    for chart in ("time_at_level.png", "hour_of_day.png", "limiting_metrics.png"):
        width, height = _png_size(tmp_path / chart)
        assert 600 <= width <= 2000 and 200 <= height <= 1500, (chart, width, height)
        assert (tmp_path / chart).stat().st_size > 5_000, chart
    for name, frame in report.tables.items():  # Parquet round-trips exactly
        assert_frame_equal(pl.read_parquet(tmp_path / f"{name}.parquet"), frame)
    page = (tmp_path / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 3
    assert "http://" not in page and "https://" not in page


def _report_cli(url: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": libpq_url(url), "NETQUALITY_STATE_DIR": str(cwd / "var"),
           "COLUMNS": "140"}
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "report", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )


def test_report_cli_end_to_end(seeded: str, tmp_path: Path) -> None:
    # No --from: the 24 hours up to the region's latest data (week 2's call).
    done = _report_cli(seeded, "--region", "eu-west", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "region eu-west" in done.stdout and "2026-11-08 15:11 to 2026-11-09 15:11" in done.stdout
    out_dir = tmp_path / "var" / "reports" / "region-eu-west-20261108T1511Z-20261109T1511Z"
    for name in ("totals.parquet", "time_at_level.png", "hour_of_day.png",
                 "limiting_metrics.png"):
        assert (out_dir / name).stat().st_size > 0, name
    assert pl.read_parquet(out_dir / "totals.parquet")["participant_seconds"].to_list() == [600]



def test_report_cli_csv_and_no_data(
    seeded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("DATABASE_URL", libpq_url(seeded))
    assert main(["report", "--room", "R1", "--from", "2026-11-02", "--to", "2026-11-03",
                 "--format", "csv", "--out", str(tmp_path / "csv")]) == 0
    assert pl.read_csv(tmp_path / "csv" / "totals.csv")["avg_level"].to_list() == [3.6]
    assert (tmp_path / "csv" / "limiting_metrics.png").exists()
    capsys.readouterr()

    assert main(["report", "--region", "eu-west", "--from", "-2h"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "no data for region 'eu-west'" in err
    assert "latest data is the minute 2026-11-09 15:10" in err
    assert main(["report", "--region", "eu-west", "--from", "yesterday"]) == 2
