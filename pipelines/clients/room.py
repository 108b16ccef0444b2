"""A room's levels for services, with the browser SDK's model: current levels first, then changes.

    async with RoomLevels("https://quality.example.com", "RM1", token, verbosity=2) as room:
        async for change in room:
            print(change.participant_sid, change.previous_level, "->", change.level)

It reads the room's live feed (``GET /api/rooms/{roomSid}/feed``, Server-Sent Events). The
first changes describe everyone present (``current=True``); then one :class:`LevelChange` per
change, ``departed=True`` when a participant leaves. A dropped feed is reopened with
``Last-Event-ID``: the server replays what was missed, then a snapshot, and :class:`RoomModel`
turns that into exactly the changes this client has not yet seen, so no change is lost or
repeated. ``room.participants`` is the current view of everyone present.

:class:`RoomModel` and :class:`SseParser` are pure (no I/O); :class:`RoomLevels` is the thin
aiohttp adapter around them (aiohttp comes with Faust).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import quote

log = logging.getLogger(__name__)

RETRY_MIN_S = 1.0
RETRY_MAX_S = 30.0
READ_TIMEOUT_S = 60.0
"""Four missed heartbeats at the default ``NETQUALITY_WEB_HEARTBEAT_S`` (15 s): the feed is
dead, reopen it."""


class RoomFeedError(RuntimeError):
    """The feed refused this client for good (bad token, other room): retrying cannot help."""


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str
    id: str | None


class SseParser:
    """Server-Sent Events framing (WHATWG HTML, "event stream interpretation"), line by line."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> SseEvent | None:
        """One line without its newline; an event when the line ends one."""
        if line == "":
            if not self._data:
                self._event, self._id = "", None
                return None
            event = SseEvent(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data, self._id = "", [], None
            return event
        if line.startswith(":"):
            return None  # a comment: the feed's heartbeat
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None


@dataclass(frozen=True, slots=True)
class LevelChange:
    """One participant's level as this client now knows it."""

    participant_sid: str
    room_sid: str
    level: int | None
    previous_level: int | None
    """What this client last reported for the participant (None: first sight)."""
    timestamp: int
    current: bool = False
    """From a snapshot (the state when the feed opened), not a change seen live."""
    departed: bool = False
    view: dict[str, Any] = field(default_factory=dict)
    """The feed's view at the requested verbosity (components and stats at 2 and 3)."""


@dataclass
class RoomModel:
    """Who is in the room at which level; turns feed events into the changes not yet seen."""

    room_sid: str
    participants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def apply(self, event: SseEvent) -> list[LevelChange]:
        if event.event not in ("snapshot", "level"):
            return []
        try:
            data = json.loads(event.data)
        except ValueError:
            log.warning("room feed: skipping an undecodable %s event", event.event)
            return []
        if event.event == "snapshot":
            return self.apply_snapshot(data.get("participants") or [])
        change = self.apply_view(data, current=False)
        return [] if change is None else [change]

    def apply_snapshot(self, views: Iterable[dict[str, Any]]) -> list[LevelChange]:
        """Everyone present now: changes for what differs, departures for who is gone."""
        changes: list[LevelChange] = []
        present = set()
        for view in views:
            present.add(view["participantSid"])
            change = self.apply_view(view, current=True)
            if change is not None:
                changes.append(change)
        for sid in sorted(set(self.participants) - present):
            gone = self.participants.pop(sid)
            changes.append(self._change(gone, None, gone.get("level"), current=True,
                                        departed=True))
        return changes

    def apply_view(self, view: dict[str, Any], *, current: bool) -> LevelChange | None:
        sid = view["participantSid"]
        known = self.participants.get(sid)
        if known is not None and view["timestamp"] < known["timestamp"]:
            return None  # older than what was already reported
        if view.get("departed"):
            if known is None:
                return None
            del self.participants[sid]
            return self._change(view, None, known.get("level"), current=current, departed=True)
        self.participants[sid] = view
        if known is not None and _visible(known) == _visible(view):
            return None
        previous = None if known is None else known.get("level")
        return self._change(view, view.get("level"), previous, current=current)

    def _change(self, view: dict[str, Any], level: int | None, previous: int | None, *,
                current: bool, departed: bool = False) -> LevelChange:
        return LevelChange(
            participant_sid=view["participantSid"], room_sid=self.room_sid, level=level,
            previous_level=previous, timestamp=int(view.get("timestamp") or 0),
            current=current, departed=departed, view=view,
        )


def _visible(view: dict[str, Any]) -> tuple[Any, ...]:
    """What a change is about: the level and, at verbosity >= 2, the components."""
    media = tuple(json.dumps(view.get(m), sort_keys=True) for m in ("audio", "video"))
    return (view.get("level"), view.get("limitedBy"), *media)


class RoomLevels:
    """``async for change in RoomLevels(url, room_sid, token)``: the room's levels, for good."""

    def __init__(
        self,
        url: str,
        room_sid: str,
        token: str,
        *,
        verbosity: int = 1,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        if verbosity not in (1, 2, 3):
            raise ValueError("verbosity must be 1 (level), 2 (+components) or 3 (+stats)")
        self.url = url.rstrip("/")
        self.room_sid = room_sid
        self.verbosity = verbosity
        self.model = RoomModel(room_sid)
        self.last_event_id: str | None = None
        self.reconnects = 0
        self._token = token
        self._read_timeout_s = read_timeout_s
        self._session: Any = None

    def __repr__(self) -> str:  # never the token
        return f"RoomLevels({self.url!r}, {self.room_sid!r}, verbosity={self.verbosity})"

    @property
    def participants(self) -> dict[str, dict[str, Any]]:
        return self.model.participants

    async def __aenter__(self) -> RoomLevels:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None
                        ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def __aiter__(self) -> AsyncIterator[LevelChange]:
        return self._changes()

    async def _changes(self) -> AsyncIterator[LevelChange]:
        import aiohttp  # noqa: PLC0415

        if self._session is None:
            self._session = aiohttp.ClientSession()
        feed = f"{self.url}/api/rooms/{quote(self.room_sid, safe='')}/feed"
        retry_s = RETRY_MIN_S
        while True:
            headers = {"Authorization": f"Bearer {self._token}", "Accept": "text/event-stream"}
            if self.last_event_id:
                headers["Last-Event-ID"] = self.last_event_id
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=10,
                                            sock_read=self._read_timeout_s)
            try:
                async with self._session.get(feed, params={"verbosity": str(self.verbosity)},
                                             headers=headers, timeout=timeout) as response:
                    if response.status in (401, 403, 404, 422):
                        body = await response.text()
                        raise RoomFeedError(
                            f"the feed of room {self.room_sid} answered {response.status}: "
                            f"{_message(body)}"
                        )
                    response.raise_for_status()
                    parser = SseParser()
                    async for raw in response.content:
                        event = parser.feed(raw.decode("utf-8").rstrip("\r\n"))
                        if event is None:
                            continue
                        if event.id:
                            self.last_event_id = event.id
                        for change in self.model.apply(event):
                            yield change
                        retry_s = RETRY_MIN_S
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.info("room feed %s dropped (%s); reopening in %.0f s", self.room_sid,
                         type(exc).__name__, retry_s)
            await asyncio.sleep(retry_s)
            retry_s = min(RETRY_MAX_S, retry_s * 2)
            self.reconnects += 1


def _message(body: str) -> str:
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body[:200]
