"""``netquality report``: one room, one region or everything over a time range.

Gathers the API's DataFrames (:class:`Report`), prints a terminal summary (rich), and writes
the tables (CSV or Parquet), three PNG charts beside them, and optionally one self-contained
HTML page (the charts embedded as base64, no external assets).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import polars as pl
from rich.console import Console
from rich.table import Table

from pipelines.analytics import frames
from pipelines.analytics.history import Bucket, QualityHistory, ScopeKind
from pipelines.analytics.timerange import TimeRange, parse_time

Format = Literal["table", "csv", "parquet", "html"]
FORMATS = ("table", "csv", "parquet", "html")
DEFAULT_SPAN = timedelta(hours=24)
TREND_WEEKS = 4
WORST_LIMIT = 10
LONG_RANGE = timedelta(days=14)
"""Beyond this, time at level is bucketed by day rather than by hour."""
FEW_BUCKETS = 3
"""With data in this few hours, time at level is shown by minute (a short demo or call)."""


class NoDataError(Exception):
    """The scope has no rollups in the range; the message says where data does exist."""


@dataclass
class Report:
    """Everything a report shows: the scope, the range and the tables by name."""

    scope: ScopeKind
    room: str | None
    region: str | None
    span: TimeRange
    driver: str
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    bucket: Bucket = "hour"
    """Granularity of the ``time_at_level`` table and chart."""

    @property
    def title(self) -> str:
        if self.room is not None:
            return f"room {self.room}"
        if self.region is not None:
            return f"region {self.region}"
        return "all regions"

    @property
    def time_at_level_title(self) -> str:
        """The chart's title, naming the bucket the table really has (minute, hour or day)."""
        return f"Time at level, {self.title} (average participants per {self.bucket}, UTC)"

    @property
    def slug(self) -> str:
        name = self.room or self.region or "all"
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return f"{self.scope}-{safe}-{self.span.label()}"


def resolve_range(
    history: QualityHistory,
    start: str | None,
    end: str | None,
    *,
    scope: ScopeKind,
    room: str | None,
    region: str | None,
) -> TimeRange:
    """The range asked for; without ``start``, the 24 hours up to the scope's latest data.

    Ending at the latest data (not at the clock) makes a bare ``netquality report`` useful
    after a demo or a replay of old traffic as well as on a live system.
    """
    if start is not None:
        return history.range(start, end or "now")
    if end is not None:
        stop = parse_time(end, history.now or datetime.now(UTC))
        return TimeRange(stop - DEFAULT_SPAN, stop)
    latest = history.latest_minute(scope=scope, room=room, region=region)
    if latest is None:
        raise NoDataError(f"no data at all for {_describe(room, region)}")
    stop = latest + timedelta(minutes=1)
    return TimeRange(stop - DEFAULT_SPAN, stop)


def _describe(room: str | None, region: str | None) -> str:
    if room is not None:
        return f"room {room!r}" + (f" in region {region!r}" if region else "")
    return f"region {region!r}" if region is not None else "any region"


def build_report(
    history: QualityHistory, span: TimeRange, *, room: str | None, region: str | None
) -> Report:
    """Query every table of the report; :class:`NoDataError` when the range holds nothing."""
    scope: ScopeKind = "room" if room is not None else "region"
    report = Report(scope, room, region, span, history.driver)
    s, e = span.start, span.end
    totals = history.totals(s, e, scope=scope, room=room, region=region)
    if totals.is_empty() or float(totals["participant_seconds"].sum()) <= 0:
        latest = history.latest_minute(scope=scope, room=room, region=region)
        hint = (
            f"; its latest data is the minute {latest:%Y-%m-%d %H:%M} UTC (try --from "
            f"{(latest - DEFAULT_SPAN):%Y-%m-%dT%H:%M} "
            f"--to {latest + timedelta(minutes=1):%Y-%m-%dT%H:%M})"
            if latest is not None
            else ": it has no data at all (check the name, or that the sink is running)"
        )
        raise NoDataError(f"no data for {_describe(room, region)} between {span}{hint}")
    t = report.tables
    t["totals"] = totals
    report.bucket = "day" if span.seconds > LONG_RANGE.total_seconds() else "hour"
    t["time_at_level"] = history.time_at_level(
        s, e, scope=scope, bucket=report.bucket, room=room, region=region
    )
    if t["time_at_level"]["bucket"].n_unique() <= FEW_BUCKETS:  # a short call: show minutes
        report.bucket = "minute"
        t["time_at_level"] = history.time_at_level(
            s, e, scope=scope, bucket="minute", room=room, region=region
        )
    t["hour_of_day"] = history.hour_of_day(s, e, scope=scope, room=room, region=region)
    if room is None:
        t["worst_rooms"] = history.worst(s, e, scope="room", region=region, limit=WORST_LIMIT)
    if room is None and region is None:
        t["worst_regions"] = history.worst(s, e, scope="region", limit=WORST_LIMIT)
    t["limiting_metrics"] = history.limiting_metrics(s, e, room=room, region=region)
    t["stability"] = history.stability(s, e, by=scope, room=room, region=region)
    week_start = (e - timedelta(days=e.weekday())).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
    trend_start = min(s, week_start - timedelta(weeks=TREND_WEEKS - 1))
    t["week_over_week"] = history.week_over_week(
        trend_start, e, scope=scope, room=room, region=region
    )
    return report


# -- terminal ------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _signed(value: float | None, digits: int = 2, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:+.1f} pt" if pct else f"{value:+.{digits}f}"


def print_summary(report: Report, console: Console) -> None:
    """The report as rich tables on the terminal."""
    console.print(
        f"[bold]Quality report: {report.title}[/bold]  {report.span}  "
        f"[dim](driver: {report.driver})[/dim]"
    )
    keys = ["room_sid"] if report.scope == "room" else ["region"]
    totals = Table(title="Time at level", title_justify="left")
    for name in [*keys, "participant-h", "avg level", "poor (0-2)", "good (4-5)"]:
        totals.add_column(name, justify="left" if name in keys else "right")
    per_level = console.width >= 110  # the share at each level only where it fits
    for level in frames.LEVELS if per_level else ():
        totals.add_column(f"L{level}", justify="right")
    for row in report.tables["totals"].iter_rows(named=True):
        total = row["participant_seconds"] or 0.0
        shares = [row[c] / total if total else None for c in frames.SECONDS_AT_LEVEL]
        totals.add_row(
            *(str(row[k]) for k in keys),
            _num(total / 3600, 1),
            _num(row["avg_level"]),
            _pct(row["share_poor"]),
            _pct(row["share_good"]),
            *(_pct(s) for s in shares if per_level),
        )
    _no_data(totals)
    console.print(totals)

    worst_tables = (("worst_regions", ["region"]), ("worst_rooms", ["room_sid", "region"]))
    for name, scope_keys in worst_tables:
        worst = report.tables.get(name)
        if worst is None:
            continue
        table = Table(title=name.replace("_", " ").capitalize(), title_justify="left")
        for column in ["#", *scope_keys, "participant-h", "avg level", "poor (0-2)"]:
            table.add_column(column, justify="right" if column not in scope_keys else "left")
        for row in worst.head(5).iter_rows(named=True):
            table.add_row(
                str(row["rank"]), *(str(row[k]) for k in scope_keys),
                _num(row["participant_seconds"] / 3600, 1), _num(row["avg_level"]),
                _pct(row["share_poor"]),
            )
        _no_data(table, "no data (or under a participant-minute each)")
        console.print(table)

    metrics = report.tables["limiting_metrics"]
    table = Table(title="What held levels below 5", title_justify="left")
    for column in ["region", "metric", "participant-min", "share", "events"]:
        table.add_column(column, justify="left" if column in ("region", "metric") else "right")
    for row in metrics.sort(["region", "seconds"], descending=[False, True]).iter_rows(named=True):
        table.add_row(row["region"], row["metric"], _num(row["seconds"] / 60, 1),
                      _pct(row["share"]), str(row["events"]))
    note = frames.below_five_note(report.tables["totals"], metrics)
    if note is not None:
        table.add_row("-", note, "", "", "")
    console.print(table)

    stability = report.tables["stability"]
    table = Table(title="Stability", title_justify="left")
    columns = [*keys, "participants", "participant-h", "level changes", "changes / participant-h"]
    for column in columns:
        table.add_column(column, justify="left" if column in keys else "right")
    for row in stability.iter_rows(named=True):
        table.add_row(*(str(row[k]) for k in keys), str(row["participants"]),
                      _num(row["present_seconds"] / 3600, 1), str(row["changes"]),
                      _num(row["changes_per_participant_hour"]))
    _no_data(table)
    console.print(table)

    trend = report.tables["week_over_week"]
    table = Table(title="Week over week", title_justify="left")
    for column in [*keys, "week of", "participant-h", "avg level", "change", "poor", "change"]:
        table.add_column(column, justify="left" if column in (*keys, "week of") else "right")
    for row in trend.iter_rows(named=True):
        table.add_row(*(str(row[k]) for k in keys), f"{row['week']:%Y-%m-%d}",
                      _num(row["participant_seconds"] / 3600, 1), _num(row["avg_level"]),
                      _signed(row["avg_level_change"]), _pct(row["share_poor"]),
                      _signed(row["share_poor_change"], pct=True))
    _no_data(table)
    console.print(table)


def _no_data(table: Table, says: str = "no data") -> None:
    """An empty table says so instead of printing nothing under its title."""
    if not table.row_count:
        table.add_row(says, *([""] * (len(table.columns) - 1)))


# -- files ---------------------------------------------------------------------------------------


def write_plots(report: Report, out_dir: Path) -> list[Path]:
    """The three charts as PNG files in ``out_dir``."""
    from pipelines.analytics import plots  # noqa: PLC0415 (matplotlib only when writing)

    t = report.tables
    return [
        plots.time_at_level(
            t["time_at_level"], out_dir / "time_at_level.png", report.time_at_level_title,
            report.bucket,
        ),
        plots.hour_of_day_heatmap(
            t["time_at_level"], out_dir / "hour_of_day.png",
            f"Average level by hour of day, {report.title}",
        ),
        plots.limiting_metrics(
            t["limiting_metrics"], out_dir / "limiting_metrics.png",
            f"What held levels below 5, {report.title}",
            frames.below_five_note(t["totals"], t["limiting_metrics"]) or "",
        ),
    ]


def write_tables(report: Report, out_dir: Path, fmt: Literal["csv", "parquet"]) -> list[Path]:
    """Each table as ``<name>.csv`` or ``<name>.parquet`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in report.tables.items():
        path = out_dir / f"{name}.{fmt}"
        if fmt == "csv":
            frame.write_csv(path)
        else:
            frame.write_parquet(path)
        written.append(path)
    return written


def _html_table(frame: pl.DataFrame, limit: int = 50) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        if isinstance(value, datetime):
            return f"{value:%Y-%m-%d %H:%M}"
        return "" if value is None else html.escape(str(value))

    if frame.is_empty():
        return "<p>no data</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
        for row in frame.head(limit).iter_rows()
    )
    more = (
        f"<p>{frame.height - limit} more rows in the exported files.</p>"
        if frame.height > limit
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{more}"


def write_html(report: Report, out_dir: Path, charts: list[Path]) -> Path:
    """``report.html``: self-contained (charts as base64 data URIs, inline CSS)."""
    images = "".join(
        f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,'
        f'{base64.b64encode(p.read_bytes()).decode()}"></figure>'
        for p in charts
    )
    def heading(name: str) -> str:
        words = name.replace("_", " ")
        return f"{words} (per {report.bucket})" if name == "time_at_level" else words

    sections = "".join(
        f"<h2>{html.escape(heading(name))}</h2>{_html_table(frame)}"
        for name, frame in report.tables.items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>netquality report: {html.escape(report.title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1rem; font-size: 0.85rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }}
th {{ background: #f3f3f3; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Quality report: {html.escape(report.title)}</h1>
<p>{html.escape(str(report.span))}. Levels 0-2 are poor, 4-5 good; times are participant-time.</p>
{images}
{sections}
</body></html>
"""
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_report(report: Report, fmt: Format, out_dir: Path) -> list[Path]:
    """The files of ``fmt`` (none for ``table``): tables, charts beside them, the HTML page."""
    if fmt == "table":
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = write_tables(report, out_dir, "csv" if fmt == "csv" else "parquet")
    charts = write_plots(report, out_dir)
    written += charts
    if fmt == "html":
        written.append(write_html(report, out_dir, charts))
    return written
