"""The bench's progress on stderr: a rich bar on a terminal, periodic plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any

PROGRESS_EVERY_S = 5.0
"""Without a terminal: one progress line per task at most this often."""


class Progress:
    """A rich progress bar on a terminal, periodic plain lines on stderr otherwise."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.rich: Any = None
        self._tasks: dict[int, list[Any]] = {}
        if enabled and sys.stderr.isatty():
            from rich.console import Console  # noqa: PLC0415
            from rich.progress import (  # noqa: PLC0415
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress  # noqa: PLC0415

            self.rich = RichProgress(
                TextColumn("{task.description:<34}"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), console=Console(stderr=True),
            )  # fmt: skip
            self.rich.start()

    def add(self, name: str, total: int) -> int:
        if self.rich is not None:
            return int(self.rich.add_task(name, total=total))
        key = len(self._tasks)
        self._tasks[key] = [name, total, 0, time.monotonic(), 0.0]
        return key

    def update(self, task: int, completed: int, *, final: bool = False) -> None:
        if self.rich is not None:
            self.rich.update(task, completed=completed)
            return
        if not self.enabled:
            return
        t = self._tasks[task]
        t[2] = completed
        now = time.monotonic()
        if final or now - t[4] >= PROGRESS_EVERY_S:
            t[4] = now
            print(
                f"[bench {now - t[3]:7.1f}s] {t[0]}: {completed:,}/{t[1]:,}",
                file=sys.stderr, flush=True,
            )  # fmt: skip

    def note(self, text: str) -> None:
        if self.rich is not None:
            self.rich.console.print(text)
        elif self.enabled:
            print(f"[bench] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.rich is not None:
            self.rich.stop()
