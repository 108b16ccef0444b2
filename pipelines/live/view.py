"""The live demo's terminal view: pure rendering of :class:`LiveState` with rich.

Nothing here does I/O; the demo's observer fills a :class:`LiveState` and the view draws it,
so the layout is testable with a recorded state.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

LEVEL_STYLE = {0: "bold red", 1: "red", 2: "dark_orange", 3: "yellow", 4: "green", 5: "bold green"}
BARS = "▃▄▅▆▇"
REGION_COLUMN_WIDTH = 60
"""Room name plus six participants' bars: below 3 x this, regions are stacked."""


def level_bars(level: int) -> Text:
    """Signal bars like a call UI: ``level`` coloured bars of 5, dim dots for the rest (so it
    reads without colour too); ✕ at 0."""
    if level <= 0:
        return Text("✕····", style=LEVEL_STYLE[0])
    text = Text(BARS[:level], style=LEVEL_STYLE[level])
    text.append("·" * (len(BARS) - level), style="grey30")
    return text


@dataclass(slots=True)
class ParticipantView:
    room_sid: str
    region: str
    level: int
    limited_by: str | None
    departed: bool = False


@dataclass(slots=True)
class Change:
    at: float
    participant_sid: str
    room_sid: str
    previous: int | None
    level: int
    limited_by: str | None


@dataclass
class LiveState:
    """Everything the view shows; the observer thread writes, the main thread reads."""

    participants: dict[str, ParticipantView] = field(default_factory=dict)
    recent: deque[Change] = field(default_factory=lambda: deque(maxlen=8))
    event_ids: set[str] = field(default_factory=set)
    level_records: int = 0
    dead_letters: int = 0
    samples_sent: int = 0
    simulated_s: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    event_times: deque[float] = field(default_factory=lambda: deque(maxlen=5000))
    alerts: dict[str, str] = field(default_factory=dict)
    """Alert id -> latest status (opened / updated / resolved)."""
    recent_alerts: deque[str] = field(default_factory=lambda: deque(maxlen=3))
    dashboard: str = ""
    """The dashboards' address (with a demo token), shown in the counters panel."""
    services: dict[str, str] = field(default_factory=dict)
    """Service name -> status line (``worker``: "running pid 123"); faces added at merge."""
    started_at: float = field(default_factory=time.monotonic)

    def events_per_s(self, window_s: float = 10.0) -> float:
        now = time.monotonic()
        recent = [t for t in self.event_times if now - t <= window_s]
        return len(recent) / window_s


def render(state: LiveState, width: int = 200) -> Group:
    """Rooms by region with each participant's bars, then recent changes and counters."""
    regions: dict[str, dict[str, list[tuple[str, ParticipantView]]]] = {}
    for sid, p in sorted(state.participants.items()):
        if p.departed:
            continue
        regions.setdefault(p.region, {}).setdefault(p.room_sid, []).append((sid, p))
    columns = []
    for region, rooms in sorted(regions.items()):
        table = Table(title=region, show_header=False, box=None, padding=(0, 1))
        table.add_column("room", style="bold")
        table.add_column("participants")
        for room_sid, members in sorted(rooms.items()):
            line = Text()
            for sid, p in members:
                line.append(sid.rsplit("-", 1)[-1])
                line.append_text(level_bars(p.level))
                line.append(" ")
            table.add_row(room_sid.removeprefix("RM-"), line)
        columns.append(table)
    grid = Table.grid(padding=(0, 3))
    if width >= REGION_COLUMN_WIDTH * max(len(columns), 1):  # regions side by side
        for _ in columns:
            grid.add_column()
        if columns:
            grid.add_row(*columns)
    else:  # a narrow terminal: regions one under the other
        grid.add_column()
        for column in columns:
            grid.add_row(column)

    changes = Table(title="recent level changes", box=None, show_header=True, padding=(0, 1))
    for column in ("participant", "change", "limited by"):
        changes.add_column(column)
    for c in reversed(state.recent):
        before = "new" if c.previous is None else str(c.previous)
        change = Text(f"{before} → ")
        change.append(str(c.level), style=LEVEL_STYLE.get(c.level, ""))
        changes.add_row(c.participant_sid, change, c.limited_by or "")

    counters = Text()
    counters.append(f"simulated {state.simulated_s} s   samples sent {state.samples_sent}   ")
    counters.append(f"level events {len(state.event_ids)} ({state.events_per_s():.1f}/s)   ")
    counters.append(f"dead letters {state.dead_letters}   ")
    open_alerts = sum(1 for status in state.alerts.values() if status != "resolved")
    counters.append(f"alerts {len(state.alerts)} ({open_alerts} open)   ",
                    style="bold red" if open_alerts else "")
    for table_name, n in state.rows.items():
        counters.append(f"{table_name} {n}   ")
    services = "   ".join(f"{name}: {status}" for name, status in state.services.items())
    return Group(
        Panel(grid, title="netquality live: levels by region and room (▃▄▅▆▇ = 5, ✕ = 0)"),
        changes,
        Panel(
            Group(
                counters,
                Text("   ".join(state.recent_alerts), style="yellow"),
                Text(services, style="dim"),
            ),
            title="counters",
        ),
    )
