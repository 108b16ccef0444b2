"""Time ranges as analysts type them: ISO dates and times, or relative like ``-2h`` (pure).

Every range is half-open, ``[start, end)``, in UTC: a naive time is taken as UTC, because the
tables store UTC and a report must not depend on the laptop's time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_RELATIVE = re.compile(r"^([+-])\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(value: str, now: datetime) -> datetime:
    """``now``, ``-2h``/``-30m``/``-7d``/``-1w`` (relative to ``now``), or an ISO date/time.

    A bare date means its midnight (UTC). Raises ``ValueError`` with the accepted forms.
    """
    text = value.strip()
    if text.lower() == "now":
        return now
    relative = _RELATIVE.match(text.lower())
    if relative:
        sign, amount, unit = relative.groups()
        delta = timedelta(seconds=float(amount) * _UNITS[unit])
        return now - delta if sign == "-" else now + delta
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            parsed = datetime.combine(date.fromisoformat(text), datetime.min.time())
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise ValueError(
            f"cannot read time {value!r}: use an ISO date or time (2026-11-23, "
            "2026-11-23T14:00, 2026-11-23T14:00+01:00), 'now', or a relative time like "
            "-30m, -2h, -7d, -1w"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range bounds must be timezone-aware")
        if self.end <= self.start:
            raise ValueError(
                f"empty time range: {self.start.isoformat()} >= {self.end.isoformat()}"
            )

    @classmethod
    def parse(cls, start: str, end: str, now: datetime) -> TimeRange:
        return cls(parse_time(start, now), parse_time(end, now))

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def label(self) -> str:
        """Short and file-name safe: ``20261123T1400Z-20261123T1600Z``."""
        return f"{self.start:%Y%m%dT%H%MZ}-{self.end:%Y%m%dT%H%MZ}"

    def __str__(self) -> str:
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC"
