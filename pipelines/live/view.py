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


@dataclass(slots=True)
class AlertView:
    """One alert as the view names it: what, about whom, and its latest status."""

    kind: str
    subject: str
    status: str
    detail: str = ""

    def line(self) -> str:
        return f"{self.kind.replace('_', ' ')} {self.subject}: {self.status}{self.detail}"


def alert_view(kind: str, status: str, *, region: str, room_sid: str | None,
               participant_sid: str | None, degraded: int, participants: int) -> AlertView:
    """Name the subject an alert is about: the participant (in its room), the room, or the
    region; rooms and regions say how many of their participants are degraded."""
    if kind == "participant_stuck" and participant_sid:
        room = f" in {room_sid.removeprefix('RM-')}" if room_sid else ""
        return AlertView(kind, f"{participant_sid}{room}", status)
    subject = room_sid.removeprefix("RM-") if room_sid else region
    return AlertView(kind, subject, status, f" ({degraded}/{participants} degraded)")


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
    alert_views: dict[str, AlertView] = field(default_factory=dict)
    """Alert id -> how the view names it, in the order alerts were first seen."""
    alert_log: deque[str] = field(default_factory=lambda: deque(maxlen=500))
    """Every alert event as a line, for the plain progress output (newest last)."""
    alert_events: int = 0
    """Alert events seen in all (``alert_log`` keeps the last 500)."""
    dashboard: str = ""
    """The dashboards' address (with a demo token), shown in the counters panel."""
    services: dict[str, str] = field(default_factory=dict)
    """Service name -> status line (``worker``: "running pid 123"); faces added at merge."""
    started_at: float = field(default_factory=time.monotonic)

    def note_alert(self, alert_id: str, view: AlertView) -> None:
        self.alerts[alert_id] = view.status
        self.alert_views[alert_id] = view
        self.alert_log.append(view.line())
        self.alert_events += 1

    def note_change(self, change: Change) -> None:
        """A level event is a change worth listing only when the level moved (or is new)."""
        if change.previous is None or change.previous != change.level:
            self.recent.append(change)

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
    changes.add_column("participant", no_wrap=True, overflow="ellipsis")
    changes.add_column("change", no_wrap=True)
    changes.add_column("limited by", no_wrap=True, overflow="ellipsis")
    for c in reversed(state.recent):
        before = "new" if c.previous is None else str(c.previous)
        change = Text(f"{before} → ")
        change.append(str(c.level), style=LEVEL_STYLE.get(c.level, ""))
        changes.add_row(c.participant_sid, change, c.limited_by or "")

    inner = max(width - 4, 20)  # inside the panel's border and padding
    open_alerts = sum(1 for status in state.alerts.values() if status != "resolved")
    counters = [
        f"simulated {state.simulated_s} s", f"samples sent {state.samples_sent}",
        f"level events {len(state.event_ids)} ({state.events_per_s():.1f}/s)",
        f"dead letters {state.dead_letters}",
        f"alerts {len(state.alerts)} ({open_alerts} open)",
    ]
    rows = [f"{ROW_LABELS.get(name, name)} {n}" for name, n in state.rows.items()]
    lines = [Text(line) for line in pack(counters, inner)]
    if rows:
        rows[0] = f"Postgres rows: {rows[0]}"
        lines += [Text(line, style="dim") for line in pack(rows, inner)]
    lines += alert_lines(state)
    lines += [Text(line, style="dim")
              for line in pack([f"{name}: {status}" for name, status in state.services.items()],
                               inner)]
    return Group(
        Panel(grid, title="netquality live: levels by region and room (▃▄▅▆▇ = 5, ✕ = 0)"),
        changes,
        Panel(Group(*lines), title="counters and alerts"),
    )


ROW_LABELS = {"level_changes": "changes", "current_levels": "current",
              "room_rollups": "room minutes", "region_rollups": "region minutes"}
SHOWN_ALERTS = {"rooms": 4, "participants": 3}
"""Room and region alerts first (they matter to more people), then the latest participants'."""
ALERT_STYLE = {"opened": "bold red", "updated": "yellow", "resolved": "green"}


def pack(items: list[str], width: int, separator: str = " · ") -> list[str]:
    """Items joined into as few lines as fit ``width`` (an item longer than that stands alone)."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(separator) + len(item) <= width:
            lines[-1] += separator + item
        else:
            lines.append(item)
    return lines


def alert_lines(state: LiveState) -> list[Text]:
    """Open room and region alerts (then a count of the rest), then recent participant ones."""
    views = list(state.alert_views.values())
    rooms = [v for v in views if v.kind != "participant_stuck" and v.status != "resolved"]
    people = [v for v in views if v.kind == "participant_stuck"]
    shown = rooms[: SHOWN_ALERTS["rooms"]] + people[-SHOWN_ALERTS["participants"]:]
    lines = [Text(v.line(), style=ALERT_STYLE.get(v.status, ""), no_wrap=True,
                  overflow="ellipsis") for v in shown]
    hidden = len(rooms) + len(people) - len(shown)
    if hidden > 0:
        lines.append(Text(f"... {hidden} more alerts (netquality alerts --from-beginning)",
                          style="dim"))
    return lines


def progress_line(state: LiveState) -> str:
    """One plain line of counters, for output that is not a terminal (``make demo | tee``)."""
    open_alerts = sum(1 for status in state.alerts.values() if status != "resolved")
    rows = ", ".join(f"{ROW_LABELS.get(name, name)} {n}" for name, n in state.rows.items())
    return (f"simulated {state.simulated_s} s: samples {state.samples_sent}, level events "
            f"{len(state.event_ids)}, dead letters {state.dead_letters}, alerts "
            f"{len(state.alerts)} ({open_alerts} open){f'; rows: {rows}' if rows else ''}")
