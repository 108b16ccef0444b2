"""PNG charts of a report (matplotlib, Agg backend: no display, no GUI toolkit needed).

One function per chart; each takes the DataFrame the API returns and a path, and returns the
path written. Level colours go from red (0) to green (5) everywhere, so the charts read alike.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import polars as pl

from pipelines.analytics import frames

LEVEL_COLOURS = ("#7f0000", "#d7301f", "#fc8d59", "#fee08b", "#91cf60", "#1a9850")
METRIC_COLOURS = {
    "bandwidth": "#4575b4",
    "loss": "#d73027",
    "latency": "#fdae61",
    "connectionState": "#542788",
    "staleness": "#878787",
}
DPI = 100
SIZE = (10, 4.5)


_EVERY = {"minute": "1m", "hour": "1h", "day": "1d", "week": "1w"}
_SECONDS = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}


def time_at_level(bucketed: pl.DataFrame, path: Path, title: str, bucket: str = "hour") -> Path:
    """The chart of :func:`time_at_level_figure`, written to ``path``."""
    return _save(time_at_level_figure(bucketed, title, bucket), path)


def time_at_level_figure(bucketed: pl.DataFrame, title: str, bucket: str = "hour") -> plt.Figure:
    """Participants at each level over time, stacked (all scopes summed).

    Plotted as participant-seconds / bucket length: the average number of participants at
    each level, which reads the same whatever the bucket size. Each bucket is a bar exactly
    as wide as the bucket, starting at its start (one 1-minute bucket once came out as a
    45-minute block), and the title and axis name the bucket actually used.
    """
    summed = (
        bucketed.group_by("bucket").agg([pl.col(c).sum() for c in frames.SECONDS_AT_LEVEL])
        .sort("bucket")
    )
    if summed.height > 1:  # buckets without anyone are zero, not an interpolation
        every = pl.datetime_range(
            summed["bucket"].min(), summed["bucket"].max(), _EVERY[bucket], time_zone="UTC",
            eager=True,
        ).alias("bucket")
        summed = pl.DataFrame(every).join(summed, on="bucket", how="left").fill_null(0.0)
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    times = summed["bucket"].to_list()
    seconds = _SECONDS[bucket]  # participant-seconds per bucket -> participants on average
    width = bar_width_days(bucket)
    bottom = [0.0] * len(times)
    for level, column in zip(frames.LEVELS, frames.SECONDS_AT_LEVEL, strict=True):
        values = (summed[column] / seconds).to_list()
        ax.bar(times, values, bottom=bottom, width=width, align="edge", linewidth=0,
               label=f"level {level}", color=LEVEL_COLOURS[level])  # fmt: skip
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    if times:
        ax.set_xlim(mdates.date2num(times[0]), mdates.date2num(times[-1]) + width)
    else:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    ax.xaxis_date()
    ax.set_title(title)
    ax.set_ylabel(f"participants (average per {bucket})")
    ax.legend(loc="upper left", fontsize="small", ncols=6)
    ax.grid(axis="y", alpha=0.3)
    fig.autofmt_xdate()
    return fig


def bar_width_days(bucket: str) -> float:
    """A bucket's length in matplotlib's date unit (days)."""
    return _SECONDS[bucket] / 86400


def hour_of_day_heatmap(hourly: pl.DataFrame, path: Path, title: str) -> Path:
    """Average level by UTC day (rows) and hour of day (columns); blank where nobody was."""
    matrix = frames.hour_day_matrix(hourly)
    days = [str(d) for d in matrix["day"].to_list()] if matrix.height else []
    values = (
        matrix.select([str(h) for h in range(24)]).to_numpy().astype(float)
        if matrix.height
        else [[float("nan")] * 24]
    )
    fig, ax = plt.subplots(figsize=(10, max(2.5, 0.35 * len(days) + 1.5)), dpi=DPI)
    image = ax.imshow(values, aspect="auto", cmap="RdYlGn", vmin=0, vmax=5)
    ax.set_xticks(range(24))
    ax.set_xlabel("hour of day (UTC)")
    ax.set_yticks(range(len(days)), labels=days)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="average level")
    return _save(fig, path)


def limiting_metrics(
    metrics: pl.DataFrame, path: Path, title: str, empty_note: str = "no data"
) -> Path:
    """Per region, the share of below-5 time each metric held the level down (stacked bars);
    ``empty_note`` where there is none (``frames.below_five_note`` says which case it is)."""
    regions = sorted(set(metrics["region"].to_list())) if metrics.height else []
    fig, ax = plt.subplots(figsize=(10, max(2.5, 0.5 * len(regions) + 1.5)), dpi=DPI)
    left = [0.0] * len(regions)
    names = list(METRIC_COLOURS) + sorted(
        set(metrics["metric"].to_list()) - set(METRIC_COLOURS) if metrics.height else set()
    )
    for metric in names:
        shares = []
        for region in regions:
            row = metrics.filter((pl.col("region") == region) & (pl.col("metric") == metric))
            shares.append(float(row["share"].fill_null(0).sum()) * 100 if row.height else 0.0)
        if any(shares):
            ax.barh(regions, shares, left=left, label=metric,
                    color=METRIC_COLOURS.get(metric, "#999999"))
            left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of participant-time below level 5")
    ax.set_title(title)
    if regions:
        ax.legend(loc="lower right", fontsize="small")
    else:
        ax.text(50, 0.5, empty_note, ha="center", va="center")
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
