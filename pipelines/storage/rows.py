"""Contract messages -> table rows (pure): one function per table, column order fixed here.

The sink COPYs these tuples (text format), so the column lists below are the single place
where a message field meets a column. JSON columns arrive as ready JSON text, encoded by
msgspec straight from the contract structs: psycopg's ``Jsonb`` would go through
``to_builtins`` and the stdlib ``json.dumps``, ~7x slower, and was the sink's largest client
cost (see benchmarks/README.md).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

import msgspec

from pipelines.contracts import AlertEvent, ContractError, LevelEvent
from pipelines.quality.rollups import MinuteRollup

LEVEL_CHANGE_COLUMNS = (
    "event_id",
    "ts",
    "room_sid",
    "participant_sid",
    "region",
    "level",
    "previous_level",
    "audio_send",
    "audio_recv",
    "video_send",
    "video_recv",
    "limited_by",
    "departed",
    "cause",
    "stats",
)
CURRENT_LEVEL_COLUMNS = (
    "participant_sid",
    "room_sid",
    "region",
    "ts",
    "level",
    "audio_send",
    "audio_recv",
    "video_send",
    "video_recv",
    "limited_by",
    "event_id",
    "departed",
    "cause",
)
ALERT_COLUMNS = (
    "alert_id",
    "kind",
    "status",
    "region",
    "room_sid",
    "participant_sid",
    "opened_at",
    "updated_at",
    "resolved_at",
    "participants",
    "degraded",
    "share",
    "payload",
)


_MEASURES = (
    *(f"seconds_at_level_{level}" for level in range(6)),
    "participants_seen",
    "min_level",
    "avg_level",
    "changes",
)
ROOM_ROLLUP_COLUMNS = ("room_sid", "minute", "region", *_MEASURES)
REGION_ROLLUP_COLUMNS = ("region", "minute", *_MEASURES)


_SECONDS: dict[int, datetime] = {}
"""Whole seconds already converted (events arrive near their time, so a batch shares few)."""
_SECONDS_KEPT = 4096
_MILLISECONDS = tuple(timedelta(milliseconds=ms) for ms in range(1000))


def ms_to_datetime(ms: int) -> datetime:
    """Epoch milliseconds (our contracts) -> an aware UTC datetime (timestamptz).

    The whole second comes from a small cache and the milliseconds are added to it: 0.38 us
    where ``datetime.fromtimestamp(ms / 1000, UTC)`` took 0.94 (it is called once per level
    event), and exact where the float division was not (off by microseconds past 2242).
    The contracts allow any ms up to 2**53 - 1; past the year 9999 no ``datetime`` holds it,
    and that is bad input (a :class:`ContractError`, dead-lettered), not a sink crash."""
    second, milliseconds = divmod(ms, 1000)
    whole = _SECONDS.get(second)
    if whole is None:
        try:
            whole = datetime.fromtimestamp(second, UTC)
        except (ValueError, OverflowError, OSError) as exc:
            raise ContractError(
                "invalid_field", f"timestamp {ms} ms is out of range (years 1-9999): {exc}"
            ) from None
        if len(_SECONDS) >= _SECONDS_KEPT:
            _SECONDS.clear()
        _SECONDS[second] = whole
    return whole + _MILLISECONDS[milliseconds]


_json = msgspec.json.Encoder()


def stats_json(event: LevelEvent) -> str:
    """The event's detailed stats as the ``level_changes.stats`` JSON text."""
    audio, video = event.audio, event.video
    return _json.encode(
        {
            "audio": {"sendStats": audio.send_stats, "recvStats": audio.recv_stats},
            "video": {"sendStats": video.send_stats, "recvStats": video.recv_stats},
        }
    ).decode()


def cause_json(event: LevelEvent) -> str | None:
    """The event's ``cause`` as the ``cause`` columns' JSON text (None: SQL NULL)."""
    cause = event.cause
    return None if cause is None else _json.encode(cause).decode()


def level_change_row(event: LevelEvent, stats: str | None = None) -> tuple[Any, ...]:
    """A ``level_changes`` row (stats as JSON text: ``stats`` when the caller has it already,
    as the sink cuts it from the message bytes, else encoded from the event)."""
    return (
        event.event_id,
        ms_to_datetime(event.timestamp),
        event.room_sid,
        event.participant_sid,
        event.region,
        event.level,
        event.previous_level,
        event.audio.send,
        event.audio.recv,
        event.video.send,
        event.video.recv,
        event.limited_by,
        event.departed,
        cause_json(event),
        stats_json(event) if stats is None else stats,
    )


def current_level_row(event: LevelEvent) -> tuple[Any, ...]:
    """A ``current_levels`` row: the participant's latest level."""
    return (
        event.participant_sid,
        event.room_sid,
        event.region,
        ms_to_datetime(event.timestamp),
        event.level,
        event.audio.send,
        event.audio.recv,
        event.video.send,
        event.video.recv,
        event.limited_by,
        event.event_id,
        event.departed,
        cause_json(event),
    )


EVENT_ID_AT, TS_AT, PARTICIPANT_AT, DEPARTED_AT = map(
    LEVEL_CHANGE_COLUMNS.index, ("event_id", "ts", "participant_sid", "departed")
)
"""Where the sink finds these fields in a ``level_changes`` row."""

_CURRENT_FROM_HISTORY = itemgetter(*(LEVEL_CHANGE_COLUMNS.index(c) for c in CURRENT_LEVEL_COLUMNS))


def current_level_row_from_history(history_row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The ``current_levels`` row of the event whose ``level_changes`` row this is: equal to
    :func:`current_level_row`, without decoding or converting anything twice."""
    return _CURRENT_FROM_HISTORY(history_row)  # type: ignore[no-any-return]


def alert_row(alert: AlertEvent) -> tuple[Any, ...]:
    """An ``alerts`` row: the alert's latest state (the whole event kept as payload)."""
    return (
        alert.alert_id,
        alert.kind,
        alert.status,
        alert.region,
        alert.room_sid,
        alert.participant_sid,
        ms_to_datetime(alert.opened_at),
        ms_to_datetime(alert.timestamp),
        None if alert.resolved_at is None else ms_to_datetime(alert.resolved_at),
        alert.participants,
        alert.degraded,
        alert.share,
        _json.encode(alert).decode(),
    )


def rollup_row(rollup: MinuteRollup) -> tuple[Any, ...]:
    """A ``room_rollups`` or ``region_rollups`` row, by the rollup's scope."""
    measures = (
        *rollup.seconds_at_level,
        rollup.participants_seen,
        rollup.min_level,
        rollup.avg_level,
        rollup.changes,
    )
    minute = ms_to_datetime(rollup.minute)
    if rollup.scope == "room":
        return (rollup.scope_id, minute, rollup.region, *measures)
    return (rollup.scope_id, minute, *measures)
