"""Historical quality as polars DataFrames: the analysts' API (for notebooks and reports).

::

    from pipelines.analytics import QualityHistory

    with QualityHistory("postgresql://analyst@db/netquality") as history:
        hourly = history.time_at_level("-24h", "now", scope="region", region="eu-west")
        worst = history.worst("2026-11-01", "2026-11-08", scope="room", limit=10)

Two sources, each used for what it is exact for:

* **Time at level** (and everything built on it: worst scopes, hour of day, week over week)
  comes from the per-minute ``room_rollups`` / ``region_rollups``, which already hold
  participant-seconds at each level, so an hour of a region is 60 rows, not its events.
  Range bounds are applied to the minute starts, so the granularity is one minute.
* **Why and how often** (limiting metrics, stability) needs each participant's level as a step
  function, from ``level_changes``: a step lasts until the participant's next event; a
  ``departed`` event ends presence; the latest step of a participant with no later event lasts
  until the end of its room's last rollup minute (how far the stream has got for that room).
  Steps are clipped to the range. A step that began before the range counts only if it began
  within ``history_lookback`` before it (default one day: participants send a level event
  on every change and leave within the TTL, so older steps are rare), which keeps the scan on
  the daily partitions the range needs.

Every value reaches SQL as a bound parameter; times may be datetimes or strings
(:func:`~pipelines.analytics.timerange.parse_time`: ISO, ``now``, ``-2h``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal

import polars as pl

from pipelines.analytics import frames
from pipelines.analytics.fetch import UTC_DATETIME, Driver, QueryRunner
from pipelines.analytics.timerange import TimeRange, parse_time

ScopeKind = Literal["room", "region"]
Bucket = Literal["minute", "hour", "day", "week"]
TimeLike = datetime | str

BUCKETS = ("minute", "hour", "day", "week")
METRICS = ("bandwidth", "loss", "latency", "connectionState", "staleness")
DEFAULT_HISTORY_LOOKBACK = timedelta(days=1)

_KEYS: dict[ScopeKind, list[str]] = {"room": ["room_sid", "region"], "region": ["region"]}
_TABLE: dict[ScopeKind, str] = {"room": "room_rollups", "region": "region_rollups"}
_SECONDS_SQL = ",\n".join(
    f"sum({c})::float8 AS {c}" for c in frames.SECONDS_AT_LEVEL
)
_ROLLUP_MEASURES_SQL = f"""{_SECONDS_SQL},
    max(participants_seen)::int8 AS peak_participants,
    min(min_level)::int2 AS min_level,
    sum(changes)::int8 AS changes"""

LIMITING_METRIC_SQL = """CASE substring(limited_by from '[^.]+$')
        WHEN 'fractionLost' THEN 'loss' ELSE substring(limited_by from '[^.]+$') END"""
"""``video.send.fractionLost`` -> ``loss``, ``audio.recv.bandwidth`` -> ``bandwidth``,
``connectionState`` and ``staleness`` as they are (the same expression is in migration 0003)."""


def _schema(keys: list[str], *extra: tuple[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = dict.fromkeys(keys, pl.String)
    schema.update(extra)
    return schema


def _rollup_schema(keys: list[str], *leading: tuple[str, Any]) -> dict[str, Any]:
    return _schema(
        keys,
        *leading,
        *((c, pl.Float64) for c in frames.SECONDS_AT_LEVEL),
        ("peak_participants", pl.Int64),
        ("min_level", pl.Int16),
        ("changes", pl.Int64),
    )


class QualityHistory:
    """Queries over the netquality tables; a context manager holding one connection.

    ``driver``: ``"auto"`` (ADBC when installed, else psycopg rows), ``"adbc"`` or ``"rows"``.
    ``now`` fixes what ``now`` and relative times mean (tests, reproducible reports).
    """

    def __init__(
        self,
        database_url: str,
        *,
        driver: Driver = "auto",
        now: datetime | None = None,
        history_lookback: timedelta = DEFAULT_HISTORY_LOOKBACK,
    ) -> None:
        self.runner = QueryRunner(database_url, driver)
        self.now = now
        self.history_lookback = history_lookback

    @property
    def driver(self) -> str:
        return self.runner.driver

    # -- helpers ---------------------------------------------------------------------------------

    def range(self, start: TimeLike, end: TimeLike) -> TimeRange:
        """``[start, end)`` from datetimes or strings (``now`` is :attr:`now` or the clock)."""
        now = self.now or datetime.now(UTC)

        def resolve(value: TimeLike) -> datetime:
            if isinstance(value, datetime):
                return value if value.tzinfo else value.replace(tzinfo=UTC)
            return parse_time(value, now)

        return TimeRange(resolve(start), resolve(end))

    def _filters(
        self, scope: ScopeKind, room: str | None, region: str | None, column: str = "minute"
    ) -> tuple[str, dict[str, Any]]:
        """Fixed SQL fragments for the optional filters; the values are bound parameters."""
        sql = f"{column} >= :start AND {column} < :end"
        params: dict[str, Any] = {}
        if region is not None:
            sql += " AND region = :region"
            params["region"] = region
        if room is not None:
            if scope == "region":
                raise ValueError("a room filter needs scope='room'")
            sql += " AND room_sid = :room"
            params["room"] = room
        return sql, params

    def _rollups(
        self,
        scope: ScopeKind,
        span: TimeRange,
        room: str | None,
        region: str | None,
        bucket_sql: str | None,
        bucket_param: dict[str, Any],
        bucket_schema: tuple[str, Any] | None,
    ) -> pl.DataFrame:
        keys = _KEYS[scope]
        where, params = self._filters(scope, room, region)
        lead = f"{bucket_sql}, " if bucket_sql else ""
        group = ("1, " if bucket_sql else "") + ", ".join(keys)
        query = f"""
            SELECT {lead}{", ".join(keys)},
                {_ROLLUP_MEASURES_SQL}
            FROM {_TABLE[scope]}
            WHERE {where}
            GROUP BY {group}
            ORDER BY {group}"""
        schema = _rollup_schema(keys, *([bucket_schema] if bucket_schema else []))
        if bucket_schema:  # the bucket first, then the keys
            schema = {bucket_schema[0]: bucket_schema[1], **schema}
        return self.runner.frame(
            query,
            {"start": span.start, "end": span.end, **params, **bucket_param},
            schema,
        )

    def rollup_minutes(
        self,
        start: TimeLike,
        end: TimeLike,
        *,
        scope: ScopeKind = "room",
        room: str | None = None,
        region: str | None = None,
    ) -> pl.DataFrame:
        """The stored per-minute rollups as they are (the large read; ADBC pays off here)."""
        keys = _KEYS[scope]
        where, params = self._filters(scope, room, region)
        measures = [*frames.SECONDS_AT_LEVEL, "participants_seen", "min_level", "avg_level",
                    "changes"]
        query = f"""
            SELECT {", ".join(keys)}, minute, {", ".join(measures)}
            FROM {_TABLE[scope]} WHERE {where} ORDER BY {", ".join(keys)}, minute"""
        span = self.range(start, end)
        return self.runner.frame(
            query,
            {"start": span.start, "end": span.end, **params},
            _schema(
                keys,
                ("minute", UTC_DATETIME),
                *((c, pl.Float64) for c in frames.SECONDS_AT_LEVEL),
                ("participants_seen", pl.Int32),
                ("min_level", pl.Int16),
                ("avg_level", pl.Float64),
                ("changes", pl.Int32),
            ),
        )

    # -- time at level ---------------------------------------------------------------------------

    def time_at_level(
        self,
        start: TimeLike,
        end: TimeLike,
        *,
        scope: ScopeKind = "region",
        bucket: Bucket = "hour",
        room: str | None = None,
        region: str | None = None,
    ) -> pl.DataFrame:
        """Participant-seconds at each level per scope and time bucket (UTC).

        Columns: ``bucket``, the scope keys (``region``; or ``room_sid``, ``region``),
        ``seconds_at_level_0..5``, ``peak_participants`` (most participants seen in one
        minute), ``min_level``, ``changes`` (level events), then ``participant_seconds``,
        ``avg_level``, ``share_poor`` (levels 0-2), ``share_good`` (levels 4-5).
        """
        if bucket not in BUCKETS:
            raise ValueError(f"unknown bucket {bucket!r}: one of {', '.join(BUCKETS)}")
        frame = self._rollups(
            scope,
            self.range(start, end),
            room,
            region,
            "date_trunc(:bucket, minute, 'UTC') AS bucket",
            {"bucket": bucket},
            ("bucket", UTC_DATETIME),
        )
        return frames.with_quality(frame)

    def totals(
        self,
        start: TimeLike,
        end: TimeLike,
        *,
        scope: ScopeKind = "region",
        room: str | None = None,
        region: str | None = None,
    ) -> pl.DataFrame:
        """One row per scope over the whole range: the same measures as :meth:`time_at_level`."""
        frame = self._rollups(scope, self.range(start, end), room, region, None, {}, None)
        return frames.with_quality(frame)

    def worst(
        self,
        start: TimeLike,
        end: TimeLike,
        *,
        scope: ScopeKind = "room",
        limit: int = 10,
        region: str | None = None,
        min_participant_seconds: float = 60.0,
    ) -> pl.DataFrame:
        """The ``limit`` worst rooms (or regions) in the range, worst first (``rank`` 1).

        Worst = the largest share of participant-time at levels 0-2, then the lowest average;
        scopes with under ``min_participant_seconds`` of presence are left out.
        """
        frame = self._rollups(scope, self.range(start, end), None, region, None, {}, None)
        return frames.rank_worst(frame, _KEYS[scope], limit, min_participant_seconds)

    def hour_of_day(
        self,
        start: TimeLike,
        end: TimeLike,
        *,
        scope: ScopeKind = "region",
        room: str | None = None,
        region: str | None = None,
    ) -> pl.DataFrame:
        """Quality by UTC hour of day (0-23), per scope, pooled over the days in the range."""
        frame = self._rollups(
            scope,
            self.range(start, end),
            room,
            region,
            "extract(hour FROM minute AT TIME ZONE 'UTC')::int4 AS hour",
            {},
            ("hour", pl.Int32),
        )
        return frames.with_quality(frame)

    def week_over_week(
        self,
        start: TimeLike,
        end: TimeLike,
        *,
        scope: ScopeKind = "region",
        room: str | None = None,
        region: str | None = None,
    ) -> pl.DataFrame:
        """Per scope and ISO week (Monday 00:00 UTC): quality and its change from the week before.

        ``avg_level_change`` > 0 and ``share_poor_change`` < 0 mean it got better.
        """
        weekly = self.time_at_level(
            start, end, scope=scope, bucket="week", room=room, region=region
        ).select(["bucket", *_KEYS[scope], *frames.SECONDS_AT_LEVEL, "changes"])
        return frames.week_over_week(weekly, _KEYS[scope])

    # -- from the level history ------------------------------------------------------------------

    def _segments_sql(self, room: str | None, region: str | None) -> tuple[str, dict[str, Any]]:
        """CTEs ``steps`` and ``segments``: each participant's levels as clipped time segments."""
        filters = ""
        params: dict[str, Any] = {}
        if region is not None:
            filters += " AND region = :region"
            params["region"] = region
        if room is not None:
            filters += " AND room_sid = :room"
            params["room"] = room
        sql = f"""
            WITH steps AS (
                SELECT participant_sid, room_sid, region, ts, level, previous_level,
                       limited_by, departed,
                       lead(ts) OVER (PARTITION BY participant_sid ORDER BY ts, event_id)
                           AS next_ts
                FROM level_changes
                WHERE ts >= :history_start AND ts < :end{filters}
            ),
            segments AS (
                SELECT s.*,
                       greatest(s.ts, :start) AS seg_start,
                       least(coalesce(s.next_ts,
                                      (SELECT max(r.minute) + interval '1 minute'
                                       FROM room_rollups r WHERE r.room_sid = s.room_sid)),
                             :end) AS seg_end
                FROM steps s
                WHERE NOT s.departed
            )"""
        return sql, params

    def _history_params(self, span: TimeRange) -> dict[str, Any]:
        return {
            "start": span.start,
            "end": span.end,
            "history_start": span.start - self.history_lookback,
        }

    def limiting_metrics(
        self,
        start: TimeLike,
        end: TimeLike,
        *,
        room: str | None = None,
        region: str | None = None,
    ) -> pl.DataFrame:
        """Why levels were below 5, per region: each limiting metric's time and events.

        Metrics: ``bandwidth``, ``loss``, ``latency`` (from ``audio|video.send|recv.<metric>``),
        ``connectionState``, ``staleness``. ``seconds``: participant-seconds spent below level
        5 held down by the metric (from the step functions); ``share``: its fraction of the
        region's below-5 seconds; ``events``: level events in the range naming it.
        """
        span = self.range(start, end)
        ctes, params = self._segments_sql(room, region)
        query = f"""{ctes},
            timed AS (
                SELECT region, {LIMITING_METRIC_SQL} AS metric,
                       sum(extract(epoch FROM seg_end - seg_start))::float8 AS seconds
                FROM segments
                WHERE seg_end > seg_start AND limited_by IS NOT NULL AND level < 5
                GROUP BY 1, 2
            ),
            counted AS (
                SELECT region, {LIMITING_METRIC_SQL} AS metric, count(*)::int8 AS events
                FROM steps
                WHERE ts >= :start AND limited_by IS NOT NULL AND level < 5 AND NOT departed
                GROUP BY 1, 2
            )
            SELECT coalesce(t.region, c.region) AS region, coalesce(t.metric, c.metric) AS metric,
                   coalesce(t.seconds, 0)::float8 AS seconds, coalesce(c.events, 0)::int8 AS events
            FROM timed t FULL JOIN counted c ON c.region = t.region AND c.metric = t.metric
            ORDER BY 1, 2"""
        frame = self.runner.frame(
            query,
            {**self._history_params(span), **params},
            {"region": pl.String, "metric": pl.String, "seconds": pl.Float64,
             "events": pl.Int64},
        )
        total = pl.col("seconds").sum().over("region")
        return frame.with_columns(share=pl.when(total > 0).then(pl.col("seconds") / total))

    def participant_stability(
        self,
        start: TimeLike,
        end: TimeLike,
        *,
        room: str | None = None,
        region: str | None = None,
    ) -> pl.DataFrame:
        """Per participant: presence in the range, overall level changes, changes per hour.

        A change is an event whose ``level`` differs from its ``previous_level`` (first events,
        component-only changes and departures are not changes of the overall level).
        """
        span = self.range(start, end)
        ctes, params = self._segments_sql(room, region)
        query = f"""{ctes}
            SELECT participant_sid, room_sid, region,
                   coalesce(sum(extract(epoch FROM seg_end - seg_start))
                            FILTER (WHERE seg_end > seg_start), 0)::float8 AS present_seconds,
                   count(*) FILTER (WHERE ts >= :start AND previous_level IS NOT NULL
                                    AND level <> previous_level)::int8 AS changes
            FROM segments
            GROUP BY 1, 2, 3
            HAVING bool_or(seg_end > seg_start)
                OR count(*) FILTER (WHERE ts >= :start) > 0
            ORDER BY 1"""
        frame = self.runner.frame(
            query,
            {**self._history_params(span), **params},
            {"participant_sid": pl.String, "room_sid": pl.String, "region": pl.String,
             "present_seconds": pl.Float64, "changes": pl.Int64},
        )
        hours = pl.col("present_seconds") / 3600
        return frame.with_columns(
            changes_per_hour=pl.when(hours > 0).then(pl.col("changes") / hours)
        )

    def stability(
        self,
        start: TimeLike,
        end: TimeLike,
        *,
        by: ScopeKind = "region",
        room: str | None = None,
        region: str | None = None,
    ) -> pl.DataFrame:
        """Level changes per participant-hour per region (or room), pooled over participants."""
        participants = self.participant_stability(start, end, room=room, region=region)
        return frames.stability_by(participants, _KEYS[by])

    def latest_minute(
        self, *, scope: ScopeKind = "region", room: str | None = None, region: str | None = None
    ) -> datetime | None:
        """Start of the newest rollup minute of the scope (``None`` without any data)."""
        where, params = "TRUE", {}
        if region is not None:
            where += " AND region = :region"
            params["region"] = region
        if room is not None:
            where += " AND room_sid = :room"
            params["room"] = room
        frame = self.runner.frame(
            f"SELECT max(minute) AS latest FROM {_TABLE[scope]} WHERE {where}",
            params,
            {"latest": UTC_DATETIME},
        )
        return None if frame.is_empty() else frame.item(0, 0)

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        self.runner.close()

    def __enter__(self) -> QualityHistory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


