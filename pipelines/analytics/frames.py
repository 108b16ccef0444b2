"""Pure polars transformations of query results: quality measures, rankings, trends.

Kept apart from the SQL so that each rule (what "poor" means, how rooms are ranked, how a
week compares with the one before) is one small function with a unit test.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

LEVELS = range(6)
SECONDS_AT_LEVEL = [f"seconds_at_level_{level}" for level in LEVELS]
POOR_MAX_LEVEL = 2
"""Levels 0-2 are "poor": the README's "bad", "very bad" and "broken", the same cut the
alerts use for a degraded participant."""
GOOD_MIN_LEVEL = 4


def with_quality(frame: pl.DataFrame) -> pl.DataFrame:
    """Add ``participant_seconds``, time-weighted ``avg_level``, ``share_poor``, ``share_good``.

    ``avg_level`` is sum(level x seconds) / sum(seconds), the same weighting as the rollups'
    own ``avg_level``; shares are fractions of the participant-seconds. All three are null
    where nobody was present.
    """
    total = pl.sum_horizontal(SECONDS_AT_LEVEL)
    weighted = pl.sum_horizontal([pl.col(c) * level for level, c in enumerate(SECONDS_AT_LEVEL)])
    poor = pl.sum_horizontal(SECONDS_AT_LEVEL[: POOR_MAX_LEVEL + 1])
    good = pl.sum_horizontal(SECONDS_AT_LEVEL[GOOD_MIN_LEVEL:])
    present = total > 0
    return frame.with_columns(
        participant_seconds=total,
        avg_level=pl.when(present).then(weighted / total),
        share_poor=pl.when(present).then(poor / total),
        share_good=pl.when(present).then(good / total),
    )


def rank_worst(
    frame: pl.DataFrame, keys: Sequence[str], limit: int, min_participant_seconds: float
) -> pl.DataFrame:
    """The ``limit`` worst scopes: most time at poor levels first, then the lowest average.

    Scopes with fewer than ``min_participant_seconds`` are left out, so that one participant's
    ten bad seconds do not top the list over a room that was poor for an hour.
    """
    return (
        with_quality(frame)
        .filter(pl.col("participant_seconds") >= min_participant_seconds)
        .sort(["share_poor", "avg_level", *keys], descending=[True, False, *([False] * len(keys))])
        .head(limit)
        .with_row_index("rank", offset=1)
    )


def week_over_week(weekly: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Per scope and week: the quality measures and their change from the previous week.

    ``weekly`` holds one row per scope and ``bucket`` (week start). A week with no row for
    the calendar week before it gets null deltas, not a comparison with an older week.
    """
    measured = with_quality(weekly).sort([*keys, "bucket"])
    over = list(keys) if keys else None
    previous_bucket = pl.col("bucket").shift(1)
    previous_avg = pl.col("avg_level").shift(1)
    previous_poor = pl.col("share_poor").shift(1)
    if over:
        previous_bucket, previous_avg, previous_poor = (
            e.over(over) for e in (previous_bucket, previous_avg, previous_poor)
        )
    consecutive = (pl.col("bucket") - previous_bucket) == pl.duration(weeks=1)
    return measured.with_columns(
        avg_level_change=pl.when(consecutive).then(pl.col("avg_level") - previous_avg),
        share_poor_change=pl.when(consecutive).then(pl.col("share_poor") - previous_poor),
    ).rename({"bucket": "week"})


def stability_by(participants: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Level changes per participant-hour, pooled over the participants of each group.

    Pooled (total changes / total hours) rather than the mean of per-participant rates, so a
    participant present for ten seconds with one change does not count as 360 changes an hour.
    """
    grouped = participants.group_by(list(keys)) if keys else None
    aggregates = [
        pl.len().alias("participants"),
        pl.col("present_seconds").sum(),
        pl.col("changes").sum(),
    ]
    out = grouped.agg(aggregates) if grouped is not None else participants.select(aggregates)
    hours = pl.col("present_seconds") / 3600
    return out.with_columns(
        changes_per_participant_hour=pl.when(hours > 0).then(pl.col("changes") / hours)
    ).sort(list(keys) if keys else "participants")


def hour_day_matrix(hourly: pl.DataFrame) -> pl.DataFrame:
    """Hourly buckets of one scope -> one row per UTC day, one column per hour (avg level)."""
    if hourly.is_empty():
        return pl.DataFrame(schema={"day": pl.Date})
    measured = with_quality(hourly).group_by(
        pl.col("bucket").dt.date().alias("day"), pl.col("bucket").dt.hour().alias("hour")
    ).agg(
        pl.sum_horizontal(SECONDS_AT_LEVEL).sum().alias("total"),
        (pl.col("avg_level") * pl.col("participant_seconds")).sum().alias("weighted"),
    )
    measured = measured.with_columns(
        avg_level=pl.when(pl.col("total") > 0).then(pl.col("weighted") / pl.col("total"))
    )
    wide = measured.pivot(on="hour", index="day", values="avg_level", sort_columns=True)
    for hour in range(24):
        if str(hour) not in wide.columns:
            wide = wide.with_columns(pl.lit(None, dtype=pl.Float64).alias(str(hour)))
    return wide.select(["day", *(str(h) for h in range(24))]).sort("day")


def below_five_note(totals: pl.DataFrame, metrics: pl.DataFrame) -> str | None:
    """What to say about the time below level 5 when no limiting metric explains it.

    From the numbers, never assumed: "every participant was at level 5" only when all the
    participant-time was at level 5 (a room averaging 4.00 was once described so because no
    limiting metric had been recorded). ``None`` when the metrics table has rows to show.
    """
    if not metrics.is_empty():
        return None
    total = float(totals["participant_seconds"].sum()) if totals.height else 0.0
    below = sum(float(totals[c].sum()) for c in SECONDS_AT_LEVEL[:5]) if totals.height else 0.0
    if total <= 0:
        return "no data"
    if below <= 0:
        return "nothing: every participant was at level 5"
    return f"no cause recorded for {below / 60:.1f} participant-min below level 5"
