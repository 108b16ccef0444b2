"""What the API and the feed send about a participant, and query-parameter rules (pure).

A *participant view* is the JSON shape of ``netquality.level.v1`` (camelCase, levels and
stats per media), built either from a ``current_levels`` row or from a live event, so the
snapshot, the live feed and ``/participants`` all speak the same shape. :func:`shape` cuts it
down to Twilio's verbosity levels: 1 the level only, 2 plus component levels, 3 plus the
detailed stats that explain each component.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from pipelines.contracts import LevelEvent

METRICS = ("bandwidth", "fractionLost", "latency")
MEDIA = ("audio", "video")
DIRECTIONS = ("send", "recv")


def cause_text(cause: dict[str, Any] | None) -> str:
    """``limited by PA02's uplink`` for an event's upstream cause; empty without one."""
    if not cause or cause.get("kind") != "upstream" or not cause.get("participantSid"):
        return ""
    return f"limited by {cause['participantSid']}'s uplink"


def limiting_metric(stats: dict[str, Any] | None) -> str | None:
    """The metric with the lowest level in a component's stats (first wins on ties)."""
    if not stats:
        return None
    worst: tuple[int, str] | None = None
    for metric in METRICS:
        entry = stats.get(metric)
        if isinstance(entry, dict) and isinstance(entry.get("level"), int):
            candidate = (entry["level"], metric)
            if worst is None or candidate[0] < worst[0]:
                worst = candidate
    return None if worst is None else worst[1]


def _media(media: str, send: int | None, recv: int | None, stats: dict[str, Any] | None,
           limited_by: str | None) -> dict[str, Any]:
    """One media's components. The component the participant's ``limitedBy`` names shows the
    same metric (the engine's choice, which also sees ties and smoothing), so a row never says
    "limited by video.recv.fractionLost" beside a video recv cell that says bandwidth."""
    stats = stats or {}
    send_stats, recv_stats = stats.get("sendStats"), stats.get("recvStats")
    limits = {"send": limiting_metric(send_stats), "recv": limiting_metric(recv_stats)}
    named = (limited_by or "").split(".")
    if len(named) == 3 and named[0] == media and named[1] in limits:
        limits[named[1]] = named[2]
    return {
        "send": send,
        "recv": recv,
        "sendStats": send_stats,
        "recvStats": recv_stats,
        "sendLimitedBy": limits["send"],
        "recvLimitedBy": limits["recv"],
    }


def view_from_event(event: LevelEvent) -> dict[str, Any]:
    """A live ``netquality.level.v1`` event as a participant view."""
    raw = msgspec.to_builtins(event)
    stats = {m: {"sendStats": raw[m].get("sendStats"), "recvStats": raw[m].get("recvStats")}
             for m in MEDIA}
    return {
        "participantSid": event.participant_sid,
        "roomSid": event.room_sid,
        "region": event.region,
        "eventId": event.event_id,
        "timestamp": event.timestamp,
        "level": event.level,
        "previousLevel": event.previous_level,
        "audio": _media("audio", event.audio.send, event.audio.recv, stats["audio"],
                        event.limited_by),
        "video": _media("video", event.video.send, event.video.recv, stats["video"],
                        event.limited_by),
        "limitedBy": event.limited_by,
        "departed": event.departed,
        "cause": raw.get("cause"),
    }


def to_ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def view_from_row(row: dict[str, Any]) -> dict[str, Any]:
    """A ``current_levels`` row (with ``stats`` joined from ``level_changes``) as a view."""
    stats = row.get("stats") or {}
    return {
        "participantSid": row["participant_sid"],
        "roomSid": row["room_sid"],
        "region": row["region"],
        "eventId": row["event_id"],
        "timestamp": to_ms(row["ts"]),
        "level": row["level"],
        "previousLevel": row.get("previous_level"),
        "audio": _media("audio", row["audio_send"], row["audio_recv"], stats.get("audio"),
                        row["limited_by"]),
        "video": _media("video", row["video_send"], row["video_recv"], stats.get("video"),
                        row["limited_by"]),
        "limitedBy": row["limited_by"],
        "departed": bool(row.get("departed")),
        "cause": row.get("cause"),
    }


def shape(view: dict[str, Any], verbosity: int) -> dict[str, Any]:
    """Cut a participant view down to a Twilio-style verbosity (1, 2 or 3)."""
    out = {k: view[k] for k in ("participantSid", "roomSid", "eventId", "timestamp", "level",
                                "previousLevel", "departed")}
    if view.get("cause"):  # whose network: small, and the point of an SFU room's view
        out["cause"] = view["cause"]
    if verbosity >= 2:
        out["limitedBy"] = view["limitedBy"]
        for media in MEDIA:
            m = view[media]
            out[media] = {"send": m["send"], "recv": m["recv"]}
            if verbosity >= 3:
                out[media].update({k: m[k] for k in ("sendStats", "recvStats", "sendLimitedBy",
                                                     "recvLimitedBy")})
    return out


class ParamError(ValueError):
    """A query parameter a client got wrong (answered with 422 and this message)."""


def parse_instant(value: str, name: str) -> datetime:
    """ISO 8601 (``2026-11-23T10:00:00Z``) or epoch milliseconds; naive means UTC."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        try:
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        except (OverflowError, ValueError, OSError):
            raise ParamError(f"{name}={value!r} is out of range") from None
    if "T" in text:
        text = text.replace(" ", "+")  # an unencoded "+01:00" arrives as " 01:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ParamError(
            f"{name}={value!r} is neither ISO 8601 (2026-11-23T10:00:00Z) nor epoch milliseconds"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def parse_range(
    start: str | None,
    end: str | None,
    *,
    now: datetime,
    default: timedelta,
    limit: timedelta,
) -> TimeRange:
    """``from``/``to`` -> a range; ``to`` defaults to now, ``from`` to ``to - default``."""
    stop = parse_instant(end, "to") if end else now
    begin = parse_instant(start, "from") if start else stop - default
    if begin >= stop:
        raise ParamError("from must be before to")
    if stop - begin > limit:
        raise ParamError(
            f"the range is {stop - begin}; the limit is {limit} (ask for a shorter range)"
        )
    return TimeRange(begin, stop)


SHORTEST_FITTED = timedelta(minutes=1)
"""A fitted range never shrinks below one minute: the charts' smallest bucket."""


def fitted_range(now: datetime, first: datetime | None, longest: timedelta) -> TimeRange:
    """A page's default range: from the first data (to the minute) up to now, at most
    ``longest``, so a young system's minutes fill the chart instead of its last few pixels."""
    start = now - longest
    if first is not None and first > start:
        # To the whole minute, but never past ``longest`` (data from 59 min 31 s ago).
        start = max(min(first.replace(second=0, microsecond=0), now - SHORTEST_FITTED), start)
    return TimeRange(start, now)


def parse_verbosity(value: str | None) -> int:
    if value is None or value == "":
        return 1
    if value not in ("1", "2", "3"):
        raise ParamError(f"verbosity={value!r}: use 1 (level), 2 (+components) or 3 (+stats)")
    return int(value)


def bucket_seconds(range_seconds: float, max_points: int = 360) -> int:
    """A whole-minute bucket so a chart of the range has at most ``max_points`` points."""
    minutes = max(1, -(-int(range_seconds) // (60 * max_points)))
    return minutes * 60
