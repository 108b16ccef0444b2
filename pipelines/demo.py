"""``netquality demo``: score the bundled real browser dumps and show what the levels say.

At this stage of the project the demo is offline: each jitsi rtcstats dump shipped in
``pipelines/demo_data/rtcstats`` (real Chrome, Firefox and Safari calls) goes through the same
engine as the streaming worker, and the result is shown per participant: time at each level,
the level changes with what limited them, and the final level.
"""

from __future__ import annotations

import io
from importlib import resources
from importlib.resources.abc import Traversable

from rich.console import Console
from rich.table import Table

from pipelines.contracts import LevelEvent, decode_level
from pipelines.demo_data import RTCSTATS
from pipelines.live.view import LEVEL_STYLE, level_bars
from pipelines.quality import Engine
from pipelines.scorer import run

DUMPS = RTCSTATS


def time_at_levels(events: list[LevelEvent], end_ms: int) -> dict[int, float]:
    """Seconds at each level, from the first event to ``end_ms``."""
    seconds: dict[int, float] = {}
    for current, following in zip(events, [*events[1:], None], strict=True):
        until = end_ms if following is None else following.timestamp
        seconds[current.level] = seconds.get(current.level, 0.0) + (until - current.timestamp) / 1e3
    return seconds


def run_demo(console: Console, dumps: Traversable = DUMPS) -> int:
    """Score every dump in ``dumps`` and print a table per dump; returns an exit status."""
    if not dumps.is_dir():
        console.print(f"[red]no dumps at {dumps}: reinstall netquality (they are package data)[/]")
        return 1
    for dump in sorted(dumps.iterdir(), key=lambda d: d.name):
        out, err = io.BytesIO(), io.StringIO()
        with resources.as_file(dump) as path:
            summary = run(str(path), "rtcstats", Engine(), out, err)
        events = [decode_level(line) for line in out.getvalue().splitlines()]
        table = Table(title=f"{dump.name}: {summary.samples} samples, {summary.events} changes")
        for column in ("participant", "now", "time at level 5..0 (s)", "changes (what limited)"):
            table.add_column(column)
        end = max((e.timestamp for e in events), default=0)
        by_participant: dict[str, list[LevelEvent]] = {}
        for event in events:
            by_participant.setdefault(event.participant_sid, []).append(event)
        for sid, evs in by_participant.items():
            last = evs[-1].level
            seconds = time_at_levels(evs, end)
            shares = " ".join(f"{seconds.get(level, 0):.0f}" for level in range(5, -1, -1))
            changes = ", ".join(
                f"[{LEVEL_STYLE[e.level]}]{e.level}[/]"
                + (f" ({e.limited_by})" if e.limited_by else "")
                for e in evs
            )
            table.add_row(
                sid.removeprefix(dump.name + "-"),
                level_bars(last).append(f" {last}", style=LEVEL_STYLE[last]),
                shares,
                changes,
            )
        console.print(table)
    console.print(
        "Levels are relative to demand: 5 very good ... 1 very bad, 0 broken or reconnecting. "
        "Score your own data with [bold]netquality score[/] (see README)."
    )
    return 0
