"""Read-only SQL behind the API: bound parameters only, one function per question.

Runs on a small SQLAlchemy connection pool (psycopg 3) in worker threads, so a slow query never
blocks the event loop that serves the live feeds. Every statement has a server-side
``statement_timeout`` and a row limit, so no request can hold Postgres for long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from pipelines.runtime import sqlalchemy_url
from pipelines.web.views import TimeRange, bucket_seconds, to_ms, view_from_row

STATEMENT_TIMEOUT_MS = 10_000
LEVELS = range(6)
_SECONDS = ", ".join(f"sum(seconds_at_level_{n}) AS l{n}" for n in LEVELS)
_TOTAL = " + ".join(f"seconds_at_level_{n}" for n in LEVELS)
_DEGRADED = " + ".join(f"seconds_at_level_{n}" for n in (0, 1, 2))


def _rows(result: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in result]


def _alert(row: dict[str, Any]) -> dict[str, Any]:
    payload = row.get("payload") or {}
    return {
        "alertId": row["alert_id"],
        "kind": row["kind"],
        "status": row["status"],
        "region": row["region"],
        "roomSid": row["room_sid"],
        "participantSid": row["participant_sid"],
        "openedAt": to_ms(row["opened_at"]),
        "updatedAt": to_ms(row["updated_at"]),
        "participants": row["participants"],
        "degraded": row["degraded"],
        "share": row["share"],
        "message": payload.get("message", ""),
        "worst": payload.get("worst", []),
    }


def _distribution(row: dict[str, Any]) -> list[float]:
    return [float(row[f"l{n}"] or 0.0) for n in LEVELS]


@dataclass
class Limits:
    max_rows: int = 5000


class Queries:
    """The questions dashboards and room services ask, against the netquality schema."""

    def __init__(self, database_url: str, limits: Limits | None = None) -> None:
        self.engine: Engine = create_engine(
            sqlalchemy_url(database_url),
            pool_size=4,
            max_overflow=4,
            pool_pre_ping=True,
            pool_timeout=10,
            connect_args={"options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                          "connect_timeout": 5},
        )
        self.limits = limits or Limits()

    def close(self) -> None:
        self.engine.dispose()

    def _all(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return _rows(conn.execute(text(sql), params))

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    # -- scope ------------------------------------------------------------------------------

    def room_region(self, room_sid: str) -> str | None:
        """The room's region (latest known), or ``None`` if the room left no trace at all."""
        rows = self._all(
            "SELECT region FROM ("
            " (SELECT region, ts AS at FROM current_levels WHERE room_sid = :room"
            "  ORDER BY ts DESC LIMIT 1)"
            " UNION ALL (SELECT region, minute AS at FROM room_rollups WHERE room_sid = :room"
            "  ORDER BY minute DESC LIMIT 1)"
            " UNION ALL (SELECT region, ts AS at FROM level_changes WHERE room_sid = :room"
            "  ORDER BY ts DESC LIMIT 1)"
            ") known ORDER BY at DESC LIMIT 1",
            room=room_sid,
        )
        return rows[0]["region"] if rows else None

    def first_data(self, since: datetime, *, room_sid: str | None = None,
                   region: str | None = None) -> datetime | None:
        """The earliest level change (or region minute) at or after ``since`` in the room or
        region: where a page's default range starts when the data is younger than it."""
        if room_sid is not None:
            rows = self._all("SELECT min(ts) AS first FROM level_changes"
                             " WHERE room_sid = :room AND ts >= :since", room=room_sid, since=since)
        else:
            rows = self._all(
                "SELECT least("
                " (SELECT min(minute) FROM region_rollups WHERE region = :region"
                "  AND minute >= :since),"
                " (SELECT min(ts) FROM level_changes WHERE region = :region AND ts >= :since)"
                ") AS first", region=region, since=since)
        return rows[0]["first"] if rows else None

    def region_exists(self, region: str) -> bool:
        rows = self._all(
            "SELECT EXISTS (SELECT 1 FROM region_rollups WHERE region = :region)"
            " OR EXISTS (SELECT 1 FROM current_levels WHERE region = :region)"
            " OR EXISTS (SELECT 1 FROM alerts WHERE region = :region) AS known",
            region=region,
        )
        return bool(rows[0]["known"])

    # -- rooms ------------------------------------------------------------------------------

    def participants(self, room_sid: str) -> list[dict[str, Any]]:
        """Present participants with their latest level, components and detailed stats."""
        rows = self._all(
            "SELECT c.*, h.stats, h.previous_level FROM current_levels c"
            " LEFT JOIN level_changes h ON h.event_id = c.event_id AND h.ts = c.ts"
            " WHERE c.room_sid = :room AND NOT c.departed"
            " ORDER BY c.participant_sid LIMIT :limit",
            room=room_sid,
            limit=self.limits.max_rows,
        )
        return [view_from_row(r) for r in rows]

    def changes_since(self, room_sid: str, since: datetime) -> list[dict[str, Any]]:
        """Level changes of a room after ``since`` as views (a feed client's resume)."""
        rows = self._all(
            "SELECT event_id, ts, room_sid, participant_sid, region, level, previous_level,"
            " audio_send, audio_recv, video_send, video_recv, limited_by, departed, stats, cause"
            " FROM level_changes WHERE room_sid = :room AND ts > :since"
            " ORDER BY ts, event_id LIMIT :limit",
            room=room_sid, since=since, limit=self.limits.max_rows,
        )
        return [view_from_row(r) for r in rows]

    def room_history(self, room_sid: str, span: TimeRange) -> dict[str, Any]:
        limit = self.limits.max_rows
        changes = self._all(
            "SELECT event_id, ts, participant_sid, level, previous_level, audio_send,"
            " audio_recv, video_send, video_recv, limited_by, departed, cause FROM level_changes"
            " WHERE room_sid = :room AND ts >= :start AND ts < :end"
            " ORDER BY ts, event_id LIMIT :limit",
            room=room_sid, start=span.start, end=span.end, limit=limit + 1,
        )
        # The level each participant had when the range starts, so timelines begin right.
        before = self._all(
            "SELECT DISTINCT ON (participant_sid) participant_sid, ts, level, limited_by,"
            " departed FROM level_changes"
            " WHERE room_sid = :room AND ts < :start AND ts >= :start - interval '1 day'"
            " ORDER BY participant_sid, ts DESC LIMIT :limit",
            room=room_sid, start=span.start, limit=limit,
        )
        minutes = self._all(
            f"SELECT minute, {', '.join(f'seconds_at_level_{n}' for n in LEVELS)},"
            " participants_seen, min_level, avg_level, changes FROM room_rollups"
            " WHERE room_sid = :room AND minute >= :start AND minute < :end"
            " ORDER BY minute LIMIT :limit",
            room=room_sid, start=span.start, end=span.end, limit=limit,
        )
        return {
            "roomSid": room_sid,
            "from": to_ms(span.start),
            "to": to_ms(span.end),
            "truncated": len(changes) > limit,
            "initial": [
                {"participantSid": r["participant_sid"], "timestamp": to_ms(r["ts"]),
                 "level": r["level"], "limitedBy": r["limited_by"], "departed": r["departed"]}
                for r in before
            ],
            "changes": [
                {
                    "eventId": r["event_id"],
                    "timestamp": to_ms(r["ts"]),
                    "participantSid": r["participant_sid"],
                    "level": r["level"],
                    "previousLevel": r["previous_level"],
                    "audio": {"send": r["audio_send"], "recv": r["audio_recv"]},
                    "video": {"send": r["video_send"], "recv": r["video_recv"]},
                    "limitedBy": r["limited_by"],
                    "departed": r["departed"],
                    **({"cause": r["cause"]} if r["cause"] else {}),
                }
                for r in changes[:limit]
            ],
            "minutes": [
                {
                    "minute": to_ms(r["minute"]),
                    "secondsAtLevel": [float(r[f"seconds_at_level_{n}"]) for n in LEVELS],
                    "participantsSeen": r["participants_seen"],
                    "minLevel": r["min_level"],
                    "avgLevel": r["avg_level"],
                    "changes": r["changes"],
                }
                for r in minutes
            ],
        }

    def room_alerts(self, room_sid: str) -> list[dict[str, Any]]:
        return [_alert(r) for r in self._all(
            "SELECT * FROM alerts WHERE room_sid = :room AND status <> 'resolved'"
            " ORDER BY opened_at DESC LIMIT 50",
            room=room_sid,
        )]

    # -- regions ----------------------------------------------------------------------------

    def regions(self, since: Any) -> list[dict[str, Any]]:
        """Every region active now or since ``since``: participants now, levels, alerts."""
        rows = self._all(
            "WITH names AS ("
            "  SELECT DISTINCT region FROM current_levels WHERE NOT departed"
            "  UNION SELECT DISTINCT region FROM region_rollups WHERE minute >= :since"
            "  UNION SELECT DISTINCT region FROM alerts WHERE status <> 'resolved'),"
            " now AS (SELECT region, count(*) AS participants, count(DISTINCT room_sid) AS rooms,"
            "  avg(level) AS avg_level,"
            + ", ".join(f" count(*) FILTER (WHERE level = {n}) AS n{n}" for n in LEVELS)
            + "  FROM current_levels WHERE NOT departed GROUP BY region),"
            " recent AS (SELECT region, " + _SECONDS + " FROM region_rollups"
            "  WHERE minute >= :since GROUP BY region),"
            " open AS (SELECT region, count(*) AS alerts FROM alerts"
            "  WHERE status <> 'resolved' GROUP BY region)"
            " SELECT names.region, coalesce(now.participants, 0) AS participants,"
            "  coalesce(now.rooms, 0) AS rooms, now.avg_level,"
            + ", ".join(f" coalesce(now.n{n}, 0) AS n{n}" for n in LEVELS) + ","
            + ", ".join(f" recent.l{n}" for n in LEVELS) + ","
            "  coalesce(open.alerts, 0) AS open_alerts"
            " FROM names LEFT JOIN now USING (region) LEFT JOIN recent USING (region)"
            " LEFT JOIN open USING (region) ORDER BY names.region LIMIT :limit",
            since=since, limit=self.limits.max_rows,
        )
        out = []
        for r in rows:
            seconds = _distribution(r)
            total = sum(seconds)
            out.append({
                "region": r["region"],
                "participants": r["participants"],
                "rooms": r["rooms"],
                "avgLevel": None if r["avg_level"] is None else round(float(r["avg_level"]), 2),
                "participantsAtLevel": [r[f"n{n}"] for n in LEVELS],
                "recentSecondsAtLevel": seconds,
                "recentDegradedShare": round(sum(seconds[:3]) / total, 4) if total else None,
                "openAlerts": r["open_alerts"],
            })
        return out

    def region_summary(self, region: str, span: TimeRange, worst: int = 10) -> dict[str, Any]:
        bucket = bucket_seconds(span.seconds)
        series = self._all(
            "SELECT date_bin(make_interval(secs => :bucket), minute, :start) AS bucket, "
            + _SECONDS + " FROM region_rollups"
            " WHERE region = :region AND minute >= :start AND minute < :end"
            " GROUP BY 1 ORDER BY 1 LIMIT :limit",
            bucket=bucket, region=region, start=span.start, end=span.end,
            limit=self.limits.max_rows,
        )
        rooms = self._all(
            "SELECT room_sid, min(min_level) AS min_level,"
            f" sum(({_DEGRADED})) AS degraded, sum(({_TOTAL})) AS total,"
            f" sum(avg_level * ({_TOTAL})) AS weighted, max(participants_seen) AS participants"
            " FROM room_rollups WHERE region = :region AND minute >= :start AND minute < :end"
            " GROUP BY room_sid HAVING sum(" + _TOTAL + ") > 0"
            " ORDER BY sum(" + _DEGRADED + ") / sum(" + _TOTAL + ") DESC,"
            " sum(avg_level * (" + _TOTAL + ")) / sum(" + _TOTAL + ") ASC, room_sid"
            " LIMIT :worst",
            region=region, start=span.start, end=span.end, worst=worst,
        )
        alerts = self._all(
            "SELECT * FROM alerts WHERE region = :region AND status <> 'resolved'"
            " ORDER BY opened_at DESC LIMIT 100",
            region=region,
        )
        now = self._all(
            "SELECT count(*) AS participants, count(DISTINCT room_sid) AS rooms"
            " FROM current_levels WHERE region = :region AND NOT departed",
            region=region,
        )[0]
        return {
            "region": region,
            "from": to_ms(span.start),
            "to": to_ms(span.end),
            "bucketSeconds": bucket,
            "participantsNow": now["participants"],
            "roomsNow": now["rooms"],
            "distribution": [
                {"time": to_ms(r["bucket"]), "secondsAtLevel": _distribution(r)} for r in series
            ],
            "worstRooms": [
                {
                    "roomSid": r["room_sid"],
                    "degradedShare": round(float(r["degraded"]) / float(r["total"]), 4),
                    "avgLevel": None if r["weighted"] is None
                    else round(float(r["weighted"]) / float(r["total"]), 2),
                    "minLevel": r["min_level"],
                    "participantSeconds": round(float(r["total"]), 1),
                    "maxParticipants": r["participants"],
                }
                for r in rooms
            ],
            "openAlerts": [_alert(r) for r in alerts],
        }

    def rooms_of_region(self, region: str) -> Sequence[dict[str, Any]]:
        return self._all(
            "SELECT room_sid, count(*) AS participants, min(level) AS min_level"
            " FROM current_levels WHERE region = :region AND NOT departed"
            " GROUP BY room_sid ORDER BY min(level), room_sid LIMIT :limit",
            region=region, limit=self.limits.max_rows,
        )
