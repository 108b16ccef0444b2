"""``netquality publish``: files (or stdin) of samples or browser dumps onto the stats topic.

Reads the same inputs as ``netquality score`` (JSON lines of samples, jitsi rtcstats dumps,
getStats reports) with the same readers, publishes through :class:`StatsPublisher`, shows a
progress bar and ends with a summary: sent, rejected (by reason code, with the first few
locations) and failed deliveries.
"""

from __future__ import annotations

import io
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from pipelines.adapters import RtcstatsLineError, samples_from_rtcstats
from pipelines.clients.publisher import PublishReport, StatsPublisher
from pipelines.scorer import InputFormat, samples_from_getstats

SHOWN_REASONS = 10


@dataclass
class PublishSummary:
    """What one ``netquality publish`` run did."""

    read: int = 0
    sent: int = 0
    messages: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    reasons: list[str] = field(default_factory=list)
    """The first few rejections and failures, with where they came from."""

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.failed

    def note(self, reason: str) -> None:
        if len(self.reasons) < SHOWN_REASONS:
            self.reasons.append(reason)


class _CountingReader(io.RawIOBase):
    """Wraps a binary stream and reports every chunk read to the progress bar."""

    def __init__(self, stream: BinaryIO, advance: Callable[[int], object]) -> None:
        self._stream = stream
        self._advance = advance

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self._advance(n)
        return n


def publish_sources(
    sources: list[str],
    fmt: InputFormat,
    publisher: StatsPublisher,
    *,
    console: Console,
    room_sid: str | None = None,
    region: str = "unknown",
) -> PublishSummary:
    """Publish every source (path or ``-``) in order; never raises on bad input."""
    summary = PublishSummary()
    origin: dict[int, str] = {}
    """Send index -> "file:line", to say where a rejected sample came from."""
    sent_index = 0

    def account(report: PublishReport) -> None:
        summary.sent += report.sent
        summary.messages += report.messages
        for rejection in report.rejected:
            summary.rejected[rejection.code] += 1
            where = origin.get(rejection.index, f"sample #{rejection.index}")
            summary.note(f"{where}: rejected: {rejection.code}: {rejection.message}")
        for failure in report.failed:
            summary.failed += failure.samples
            summary.note(f"delivery of {failure.samples} samples failed: {failure.error}")

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[samples]} samples"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        for source in sources:
            name = "stdin" if source == "-" else Path(source).name
            total = None if source == "-" else Path(source).stat().st_size
            task = progress.add_task(name, total=total, samples=0)
            raw: BinaryIO = (
                sys.stdin.buffer if source == "-" else Path(source).open("rb")  # noqa: SIM115
            )
            reader = io.BufferedReader(
                _CountingReader(raw, lambda n, t=task: progress.advance(t, n))
            )
            try:
                for where, item in _items(reader, fmt, name, room_sid, region, summary):
                    origin[sent_index] = where
                    sent_index += 1
                    summary.read += 1
                    publisher.send(item)
                    if summary.read % 500 == 0:
                        progress.update(task, samples=summary.read)
            finally:
                if raw is not sys.stdin.buffer:
                    raw.close()
            progress.update(task, samples=summary.read, completed=total or 0, total=total or 0)
            account(publisher.flush())
    return summary


def _items(
    stream: BinaryIO,
    fmt: InputFormat,
    name: str,
    room_sid: str | None,
    region: str,
    summary: PublishSummary,
) -> Iterator[tuple[str, object]]:
    """(location, sample-or-raw-line) pairs; unreadable dump lines are counted as rejected."""
    if fmt == "samples":
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield f"{name}:{number}", line
        return

    def rejected(code: str, where: str, reason: str) -> None:
        summary.rejected[code] += 1
        summary.note(f"{where}: rejected: {code}: {reason}")

    if fmt == "rtcstats":

        def on_line_error(exc: RtcstatsLineError) -> None:
            rejected("invalid_dump", f"{name}:{exc.line_number}", exc.reason)

        for sample in samples_from_rtcstats(
            stream, dump_name=name, room_sid=room_sid, region=region, on_error=on_line_error
        ):
            yield f"{name} ({sample.participant_sid} seq {sample.seq})", sample
        return

    def on_error(number: int, reason: str) -> None:
        rejected("invalid_report", f"{name}:{number}", reason)

    yield from (
        (name, sample)
        for sample in samples_from_getstats(
            stream.read(),
            on_error,
            room_sid=room_sid or name,
            participant_sid=Path(name).stem,
            region=region,
        )
    )


def print_summary(summary: PublishSummary, console: Console) -> None:
    """The closing lines: counts first, then the first reasons, on the given console."""
    rejected = sum(summary.rejected.values())
    by_code = ", ".join(f"{code} {n}" for code, n in summary.rejected.most_common())
    console.print(
        f"read {summary.read} samples: sent {summary.sent} in {summary.messages} messages, "
        f"rejected {rejected}{f' ({by_code})' if by_code else ''}, failed {summary.failed}"
    )
    for reason in summary.reasons:
        console.print(f"  {reason}", markup=False, highlight=False)
    hidden = rejected + (1 if summary.failed else 0) - len(summary.reasons)
    if hidden > 0:
        console.print(f"  ... and more ({hidden} not shown)")
