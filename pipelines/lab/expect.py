"""Expected level bands for a lab run, and the check of a timeline against them.

A band says: participant ``who``, between ``from`` and ``to`` seconds into the call, has a
level within ``min..max`` on ``all`` of those seconds, or ``reaches`` it on at least one of
them. Runs vary (issue 23: the same 8 % loss showed fractionLost 0.05-0.14), so bands are
ranges and windows are seconds wide, each with its reason beside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pipelines.lab.report import Second


@dataclass(frozen=True, slots=True)
class Band:
    who: str
    start_s: int
    end_s: int
    """Inclusive."""
    check: Literal["all", "reaches"]
    low: int
    high: int
    why: str
    today: str = ""
    """Non-empty when today's engine is known to miss this band: what it does instead."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Band:
        check = data["check"]
        if check not in ("all", "reaches"):
            raise ValueError(f"band check must be 'all' or 'reaches', got {check!r}")
        return cls(str(data["who"]), int(data["from"]), int(data["to"]), check,
                   int(data["min"]), int(data["max"]), str(data.get("why", "")),
                   str(data.get("today", "")))

    def describe(self) -> str:
        within = f"{self.low}" if self.low == self.high else f"{self.low}..{self.high}"
        verb = "stays within" if self.check == "all" else "reaches"
        return f"{self.who} {verb} {within} over {self.start_s}-{self.end_s} s"


def load_bands(path: Path) -> dict[str, list[Band]]:
    """``{scenario: [band, ...]}`` from a JSON table (keys starting with ``_`` are notes)."""
    table = json.loads(path.read_text(encoding="utf-8"))
    return {name: [Band.from_json(b) for b in bands]
            for name, bands in table.items() if not name.startswith("_")}


def failures(rows: Sequence[Second], bands: Sequence[Band]) -> list[str]:
    """One line per band the timeline misses, with the levels it had; empty when all hold."""
    out = []
    for band in bands:
        seen = [r.levels.get(band.who) for r in rows if band.start_s <= r.t_s <= band.end_s]
        inside = [lvl is not None and band.low <= lvl <= band.high for lvl in seen]
        held = bool(seen) and (all(inside) if band.check == "all" else any(inside))
        if not held:
            out.append(f"{band.describe()}: levels were {seen} ({band.why})")
    return out
