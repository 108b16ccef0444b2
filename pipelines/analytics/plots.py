"""PNG charts of a report (matplotlib, Agg backend: no display, no GUI toolkit needed).

One function per chart; each takes the DataFrame the API returns and a path, and returns the
path written. Level colours go from red (0) to green (5) everywhere, so the charts read alike.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

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
    """Participants at each level over time, stacked (all scopes summed).

    Plotted as participant-seconds / bucket length: the average number of participants at
    each level, which reads the same whatever the bucket size.
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
    width = _SECONDS[bucket]  # participant-seconds per bucket -> participants present on average
    series = [(summed[c] / width).to_list() for c in frames.SECONDS_AT_LEVEL]
    labels = [f"level {level}" for level in frames.LEVELS]
    if len(times) > 1:
        ax.stackplot(times, series, labels=labels, colors=LEVEL_COLOURS, step="post")
    else:  # one bucket: a stacked bar reads better than a zero-width area
        bottom = 0.0
        for values, label, colour in zip(series, labels, LEVEL_COLOURS, strict=True):
            value = values[0] if values else 0.0
            ax.bar(times or [0], [value], bottom=bottom, label=label, color=colour, width=0.03)
            bottom += value
    ax.set_title(title)
    ax.set_ylabel(f"participants (average per {bucket})")
    ax.legend(loc="upper left", fontsize="small", ncols=6)
    ax.grid(axis="y", alpha=0.3)
    fig.autofmt_xdate()
    return _save(fig, path)


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


def limiting_metrics(metrics: pl.DataFrame, path: Path, title: str) -> Path:
    """Per region, the share of below-5 time each metric held the level down (stacked bars)."""
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
        ax.text(50, 0.5, "no participant-time below level 5", ha="center", va="center")
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
