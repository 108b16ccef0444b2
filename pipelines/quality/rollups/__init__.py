"""Per-minute rollups of participants' levels, per room and per region (pure: no clock, no I/O).

A participant's level is a step function of event time: it holds from one level event until the
participant's next one and ends at its ``departed`` event. A minute's aggregate is therefore a
function of the step functions alone, so :class:`RoomRollups` keeps the recent *steps* of each
participant (not running sums) and computes a minute when it closes. That is what makes late
events cheap to get right: a late step is inserted where it belongs and the affected closed
minutes are simply recomputed and re-emitted under the same key, never patched by deltas that a
replay could apply twice.

Closing rules (event time only, so a replay reproduces the same output):

* The room's watermark is the largest event time it has seen minus ``allowed_lateness_ms``,
  or a larger watermark handed to :meth:`RoomRollups.advance` (a partition-wide or timer
  watermark, so that quiet rooms close their minutes too). It never goes back.
* A minute ``[m, m + 60 s)`` closes once ``m + 60 s <= watermark``; it is emitted then, once,
  with ``revision`` 0 (minutes where nothing happened and nobody was present are not emitted).
* An event inside a closed minute is *late*. If its minute is still retained (the last
  ``keep_closed_minutes`` closed minutes), every closed minute it changes is re-emitted in full
  with ``revision + 1``; sinks upsert by ``(scope, scope id, minute)``, so the correction
  replaces the earlier row. Older events are dropped and counted in ``dropped_late``.
* Events are deduplicated by ``event_id`` (at-least-once delivery replays them).

Region minutes (:class:`RegionRollups`) are sums of the latest revision of each room's minute.

Modules: ``minutes`` (the message and its arithmetic), ``room`` and ``region`` (the two
states), ``codec`` (their table bytes), ``due`` (the sweeps' peek at a room's bytes) and
``logic`` (both states behind the room stages' protocol, ``pipelines.quality.room.logic``).
"""

from __future__ import annotations

from pipelines.quality.rollups.codec import dump_region, dump_room, load_region, load_room
from pipelines.quality.rollups.minutes import (
    LEVELS,
    MINUTE_MS,
    ROLLUPS_SCHEMA,
    MinuteRollup,
    Scope,
    SecondsAtLevel,
    _aggregate,
    decode_rollup,
    latest_of_each_minute,
    minute_of,
)
from pipelines.quality.rollups.region import (
    DEFAULT_REGION_KEEP_MINUTES,
    MinuteTotals,
    RegionRollups,
    RoomPart,
    sum_rollups,
)
from pipelines.quality.rollups.room import (
    DEFAULT_ALLOWED_LATENESS_MS,
    DEFAULT_KEEP_CLOSED_MINUTES,
    RoomRollups,
    Step,
)

__all__ = [
    "DEFAULT_ALLOWED_LATENESS_MS",
    "DEFAULT_KEEP_CLOSED_MINUTES",
    "DEFAULT_REGION_KEEP_MINUTES",
    "LEVELS",
    "MINUTE_MS",
    "ROLLUPS_SCHEMA",
    "MinuteRollup",
    "MinuteTotals",
    "RegionRollups",
    "RoomPart",
    "RoomRollups",
    "Scope",
    "SecondsAtLevel",
    "Step",
    "_aggregate",
    "decode_rollup",
    "dump_region",
    "dump_room",
    "latest_of_each_minute",
    "load_region",
    "load_room",
    "minute_of",
    "sum_rollups",
]
