"""Analyst views for BI tools (Grafana, Metabase), readable by the analyst role.

Revision ID: 0003_analyst_views
Revises: 0002
Create Date: 2026-11-23

Plain views, not materialized: the rollup tables they read are already per-minute
aggregates, and a BI tool's time filter on ``hour``/``day`` stays cheap at that size. The
step-function views (``v_level_steps`` and those built on it) read the whole level history;
filter them by time and room or region. The SQL is frozen here on purpose (a migration must
create the same thing forever); ``pipelines.analytics.history`` computes the same numbers,
and a test checks that both agree.
"""

from alembic import op

revision = "0003_analyst_views"
down_revision = "0002"
branch_labels = None
depends_on = None

ROLE = "netquality_analyst"
LEVELS = range(6)
_SECONDS = [f"seconds_at_level_{level}" for level in LEVELS]
_TOTAL = " + ".join(_SECONDS)
_WEIGHTED = " + ".join(f"{level} * {c}" for level, c in zip(LEVELS, _SECONDS, strict=True))
_POOR = " + ".join(_SECONDS[:3])


def _time_at_level_hourly(name: str, table: str, keys: str) -> str:
    sums = ",\n            ".join(f"sum({c})::float8 AS {c}" for c in _SECONDS)
    return f"""
        CREATE VIEW {name} AS
        SELECT date_trunc('hour', minute, 'UTC') AS hour, {keys},
            {sums},
            sum({_TOTAL})::float8 AS participant_seconds,
            (sum({_WEIGHTED}) / nullif(sum({_TOTAL}), 0))::float8 AS avg_level,
            (sum({_POOR}) / nullif(sum({_TOTAL}), 0))::float8 AS share_poor,
            max(participants_seen)::int8 AS peak_participants,
            min(min_level)::int2 AS min_level,
            sum(changes)::int8 AS changes
        FROM {table}
        GROUP BY 1, {keys}
    """


VIEWS = {
    "v_room_time_at_level_hourly": _time_at_level_hourly(
        "v_room_time_at_level_hourly", "room_rollups", "room_sid, region"
    ),
    "v_region_time_at_level_hourly": _time_at_level_hourly(
        "v_region_time_at_level_hourly", "region_rollups", "region"
    ),
    # Each participant's level as a step function: a step lasts until the participant's next
    # event; a departure ends presence; the latest step lasts until the end of the room's
    # last rollup minute (how far the stream has got for that room).
    "v_level_steps": """
        CREATE VIEW v_level_steps AS
        SELECT s.participant_sid, s.room_sid, s.region, s.level, s.previous_level,
               s.limited_by,
               CASE substring(s.limited_by from '[^.]+$')
                   WHEN 'fractionLost' THEN 'loss'
                   ELSE substring(s.limited_by from '[^.]+$') END AS metric,
               s.ts AS started_at,
               coalesce(s.next_ts,
                        (SELECT max(r.minute) + interval '1 minute'
                         FROM room_rollups r WHERE r.room_sid = s.room_sid)) AS ended_at
        FROM (
            SELECT participant_sid, room_sid, region, level, previous_level, limited_by,
                   departed, ts,
                   lead(ts) OVER (PARTITION BY participant_sid ORDER BY ts, event_id) AS next_ts
            FROM level_changes
        ) s
        WHERE NOT s.departed
    """,
    "v_limiting_metrics_daily": """
        CREATE VIEW v_limiting_metrics_daily AS
        WITH limited AS (
            SELECT * FROM v_level_steps
            WHERE metric IS NOT NULL AND level < 5
        ),
        timed AS (
            SELECT (d.day)::date AS day, l.region, l.metric,
                   sum(extract(epoch FROM
                       least(l.ended_at, (d.day + interval '1 day') AT TIME ZONE 'UTC')
                       - greatest(l.started_at, d.day AT TIME ZONE 'UTC')))::float8 AS seconds
            FROM limited l
            CROSS JOIN LATERAL generate_series(
                date_trunc('day', l.started_at AT TIME ZONE 'UTC'),
                (l.ended_at AT TIME ZONE 'UTC') - interval '1 microsecond',
                interval '1 day') AS d(day)
            WHERE l.ended_at > l.started_at
            GROUP BY 1, 2, 3
        ),
        counted AS (
            SELECT (started_at AT TIME ZONE 'UTC')::date AS day, region, metric,
                   count(*)::int8 AS events
            FROM limited
            GROUP BY 1, 2, 3
        )
        SELECT coalesce(t.day, c.day) AS day, coalesce(t.region, c.region) AS region,
               coalesce(t.metric, c.metric) AS metric,
               coalesce(t.seconds, 0)::float8 AS seconds, coalesce(c.events, 0)::int8 AS events
        FROM timed t
        FULL JOIN counted c ON c.day = t.day AND c.region = t.region AND c.metric = t.metric
    """,
    "v_participant_stability": """
        CREATE VIEW v_participant_stability AS
        SELECT participant_sid, room_sid, region,
               min(started_at) AS first_seen, max(ended_at) AS last_seen,
               coalesce(sum(extract(epoch FROM ended_at - started_at))
                        FILTER (WHERE ended_at > started_at), 0)::float8 AS present_seconds,
               count(*) FILTER (WHERE previous_level IS NOT NULL
                                AND level <> previous_level)::int8 AS changes,
               (count(*) FILTER (WHERE previous_level IS NOT NULL AND level <> previous_level)
                / nullif(sum(extract(epoch FROM ended_at - started_at))
                         FILTER (WHERE ended_at > started_at) / 3600, 0))::float8
                   AS changes_per_hour
        FROM v_level_steps
        GROUP BY participant_sid, room_sid, region
    """,
    "v_alerts": """
        CREATE VIEW v_alerts AS
        SELECT alert_id, kind, status, region, room_sid, participant_sid, opened_at,
               resolved_at, updated_at,
               extract(epoch FROM coalesce(resolved_at, updated_at) - opened_at)::float8
                   AS duration_s,
               status <> 'resolved' AS is_open,
               participants, degraded, share,
               payload->>'message' AS message
        FROM alerts
    """,
}


def upgrade() -> None:
    for name, ddl in VIEWS.items():
        op.execute(ddl)
        op.execute(f"COMMENT ON VIEW {name} IS 'netquality analyst view (see README, Analysts)'")
        # Explicit, though 0001's default privileges cover views too: those only apply to
        # objects created by the role that ran 0001.
        op.execute(f"GRANT SELECT ON {name} TO {ROLE}")


def downgrade() -> None:
    for name in reversed(list(VIEWS)):  # dependants first
        op.execute(f"DROP VIEW IF EXISTS {name}")
