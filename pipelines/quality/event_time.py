"""Whether a level event's time is believable against the stream's clock (pure: no I/O).

A level event carries its client's clock (``timestamp`` of the sample that caused it). The room
stages close minutes and open alerts on event time, so one client whose clock is years behind
(a phone that lost its time, a recorded dump published live) or ahead would make them close
every minute in between, for every room, and open alerts in the past or the future. What the
stream itself knows is when each sample reached it: its produce time, written by our publisher
or ingest service. The levels agent stamps that on every event it routes to the room stages
(:attr:`~pipelines.quality.room.level.RoomLevel.stream_time`), the room stages' clock follows
it, and :func:`judge_event_time` decides each event against that clock:

* ``"accepted"``: within ``behind_ms`` before and ``ahead_ms`` after the clock;
* ``"late"``: older than that: counted and dropped, like an event past a closed minute's
  correction window (it cannot be placed in minutes that are already final);
* ``"ahead"``: from the future: a client clock running fast, counted and dropped (taken, it
  would close the minutes of its room before the others' events arrive).

So an accepted event opens a room at most ``behind_ms`` before the clock, and the minutes a
room can fill before its first real event are bounded by :func:`max_minutes_before_clock`.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Verdict = Literal["accepted", "late", "ahead"]

MINUTE_MS = 60_000


class EventTimeBounds(msgspec.Struct, frozen=True):
    """How far an event's own time may be from the stream clock (ms); see ``pipelines.config``
    (``NETQUALITY_EVENT_TIME_BEHIND_S``, ``NETQUALITY_EVENT_TIME_AHEAD_S``) for the reasons."""

    behind_ms: int
    ahead_ms: int

    def __post_init__(self) -> None:
        if self.behind_ms < 0 or self.ahead_ms < 0:
            raise ValueError("event time bounds must be >= 0")

    @classmethod
    def of_seconds(cls, behind_s: float, ahead_s: float) -> EventTimeBounds:
        return cls(int(behind_s * 1000), int(ahead_s * 1000))


def judge_event_time(event_ms: int, clock_ms: int, bounds: EventTimeBounds) -> Verdict:
    """The verdict on an event at ``event_ms`` when the stream clock reads ``clock_ms``.

    A clock of 0 has read nothing trustworthy yet (no stream time known): every event is
    accepted, as before stream times were stamped.
    """
    if not clock_ms:
        return "accepted"
    if event_ms < clock_ms - bounds.behind_ms:
        return "late"
    if event_ms > clock_ms + bounds.ahead_ms:
        return "ahead"
    return "accepted"


def describe(verdict: Verdict, bounds: EventTimeBounds) -> str:
    """Why an event was dropped, for a log line: ``more than 300 s behind the stream clock``."""
    if verdict == "late":
        return f"more than {bounds.behind_ms / 1000:g} s behind the stream clock"
    if verdict == "ahead":
        return f"more than {bounds.ahead_ms / 1000:g} s ahead of the stream clock"
    return "within the bounds of the stream clock"


def max_minutes_before_clock(bounds: EventTimeBounds) -> int:
    """Most whole minutes a room's first accepted event can lie before the stream clock:
    what a room first seen through a late event can fill before the clock's minute."""
    return -(-bounds.behind_ms // MINUTE_MS)
