"""A level history written the way the pipeline writes it: for tests, benchmarks, notebooks.

Participants are scripted as steps (``at``, ``level``, ``limited_by``); :func:`events` turns
them into ``netquality.level.v1`` events, :func:`rollup_rows` runs the real rollup rules
(:mod:`pipelines.quality.rollups`) over them, and :func:`write_history` COPYs the events,
the room minutes and the region minutes into a migrated database, through the same row
functions as the sink. So the tables hold exactly what a worker and a sink would have
produced for that history, and a test can state the expected answers by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from pipelines.contracts.level import LevelEvent, MediaLevels
from pipelines.quality.rollups import MinuteRollup, RegionRollups, RoomRollups
from pipelines.runtime import libpq_url
from pipelines.storage.rows import (
    LEVEL_CHANGE_COLUMNS,
    REGION_ROLLUP_COLUMNS,
    ROOM_ROLLUP_COLUMNS,
    level_change_row,
    rollup_row,
)


@dataclass(frozen=True, slots=True)
class Step:
    """From ``at`` on, the participant is at ``level`` (held down by ``limited_by``)."""

    at: datetime
    level: int
    limited_by: str | None = None


@dataclass(frozen=True, slots=True)
class ScriptedStay:
    """One participant's stay in a room: its level steps, then its departure at ``leave``."""

    participant_sid: str
    room_sid: str
    region: str
    steps: Sequence[Step]
    leave: datetime | None = None


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def events(stays: Iterable[ScriptedStay]) -> list[LevelEvent]:
    """The level events of the stays, in time order (ids ``participant:seq``)."""
    out: list[LevelEvent] = []
    for stay in stays:
        previous: int | None = None
        seq = 0
        for seq, step in enumerate(stay.steps, start=1):
            out.append(
                LevelEvent(
                    schema="netquality.level.v1",
                    event_id=f"{stay.participant_sid}:{seq}",
                    room_sid=stay.room_sid,
                    participant_sid=stay.participant_sid,
                    region=stay.region,
                    timestamp=_ms(step.at),
                    level=step.level,
                    previous_level=previous,
                    audio=MediaLevels(send=step.level),
                    video=MediaLevels(),
                    limited_by=step.limited_by if step.level < 5 else None,
                )
            )
            previous = step.level
        if stay.leave is not None:
            out.append(
                LevelEvent(
                    schema="netquality.level.v1",
                    event_id=f"{stay.participant_sid}:{seq + 1}:departed",
                    room_sid=stay.room_sid,
                    participant_sid=stay.participant_sid,
                    region=stay.region,
                    timestamp=_ms(stay.leave),
                    level=previous if previous is not None else 5,
                    previous_level=previous,
                    audio=MediaLevels(),
                    video=MediaLevels(),
                    departed=True,
                )
            )
    out.sort(key=lambda e: (e.timestamp, e.event_id))
    return out


def rollup_rows(
    level_events: Sequence[LevelEvent],
) -> tuple[list[MinuteRollup], list[MinuteRollup]]:
    """Room and region minutes of the events by the pipeline's rules (latest revision each)."""
    rooms: dict[str, RoomRollups] = {}
    room_minutes: dict[tuple[str, int], MinuteRollup] = {}
    for event in level_events:
        state = rooms.setdefault(event.room_sid, RoomRollups.for_event(event))
        for rollup in state.apply(event):
            room_minutes[(rollup.scope_id, rollup.minute)] = rollup
    for state in rooms.values():
        end = max((e.timestamp for e in level_events), default=0) + 10 * 60_000
        for rollup in state.advance(end):
            room_minutes[(rollup.scope_id, rollup.minute)] = rollup
    regions: dict[str, RegionRollups] = {}
    region_minutes: dict[tuple[str, int], MinuteRollup] = {}
    for rollup in sorted(room_minutes.values(), key=lambda r: (r.minute, r.scope_id)):
        state = regions.setdefault(rollup.region, RegionRollups(rollup.region))
        for total in state.apply(rollup):
            region_minutes[(total.scope_id, total.minute)] = total
    return list(room_minutes.values()), list(region_minutes.values())


def _copy(conn: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Iterable[
    Sequence[Any]
]) -> None:
    with conn.cursor() as cur, cur.copy(
        f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)


def write_history(database_url: str, stays: Iterable[ScriptedStay]) -> list[LevelEvent]:
    """Write the stays' events and rollups into a migrated database; return the events."""
    level_events = events(stays)
    room, region = rollup_rows(level_events)
    with psycopg.connect(libpq_url(database_url)) as conn:
        _copy(
            conn,
            "level_changes",
            LEVEL_CHANGE_COLUMNS,
            map(level_change_row, level_events),  # stats: JSON text, as the sink writes it
        )
        _copy(conn, "room_rollups", ROOM_ROLLUP_COLUMNS, map(rollup_row, room))
        _copy(conn, "region_rollups", REGION_ROLLUP_COLUMNS, map(rollup_row, region))
    return level_events
