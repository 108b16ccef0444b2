"""The offline scorer behind ``netquality score``: stats samples in, level-change events out.

Same engine as the streaming agent, fed in batches for throughput. Input is JSON lines of
``netquality.stats.v1`` samples, a jitsi rtcstats dump, or one getStats report; bad input is
reported (line number and reason) and skipped, never fatal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

from pipelines.adapters import (
    RtcstatsLineError,
    sample_from_report,
    samples_from_rtcstats,
)
from pipelines.adapters.sniff import InputFormat
from pipelines.contracts import ContractError, StatsSample, decode_stats, encode
from pipelines.contracts.codec import decode_json
from pipelines.quality import Engine
from pipelines.quality.attribution import RoomViews, UpstreamView, ViewLookup, ViewStore
from pipelines.usage import ErrorLines

__all__ = ["InputFormat", "ScoreSummary", "run", "score"]

BATCH = 2048

OnError = Callable[[int, str], None]
"""Called with (line number, reason) for each input line that is skipped."""


@dataclass(slots=True)
class ScoreSummary:
    """What one scoring run read and wrote."""

    samples: int = 0
    events: int = 0
    skipped: int = 0
    ignored: int = 0
    """Duplicates and out-of-order samples the engine dropped (valid input, not errors)."""


def samples_from_json_lines(lines: Iterable[bytes], on_error: OnError) -> Iterator[StatsSample]:
    """Decode JSON lines of samples; blank lines are allowed, bad ones go to ``on_error``."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield decode_stats(line)
        except ContractError as exc:
            on_error(number, f"{exc.code}: {exc.message}")


def samples_from_getstats(
    data: bytes, on_error: OnError, *, room_sid: str, participant_sid: str, region: str
) -> Iterator[StatsSample]:
    """One RTCStatsReport JSON document (any of the three shapes browsers/tools emit)."""
    try:
        report = decode_json(data)
    except ContractError as exc:
        on_error(1, f"{exc.code}: {exc.message}")
        return
    try:
        sample = sample_from_report(
            report, room_sid=room_sid, participant_sid=participant_sid, region=region, seq=1
        )
    except (ValueError, TypeError, KeyError) as exc:
        on_error(1, f"invalid_report: {exc}")
        return
    yield sample


def score(
    samples: Iterable[StatsSample],
    engine: Engine,
    write: Callable[[bytes], object],
    *,
    attribute: bool = True,
) -> ScoreSummary:
    """Feed samples through the engine in batches, writing each event as one JSON line.

    ``attribute``: the input holds whole rooms, so publishers' uplink trouble is attributed
    as the pipeline does (docs/levels.md, Whose network): the room views are built here, in
    input (event-time) order, from the engine's uplink changes, each applied before the next
    sample is scored, exactly as the pipeline's room stage forwards them.
    """
    summary = ScoreSummary()
    batch: list[StatsSample] = []
    views: ViewLookup | None = None
    if attribute:
        if engine.uplink_changes is None:
            engine.uplink_changes = []
        rooms, store = RoomViews(), ViewStore()

        def view_of(participant_sid: str) -> UpstreamView | None:
            for change in engine.take_uplink_changes():
                store.apply(rooms.apply(change))
            return store.get(participant_sid)

        views = view_of

    def flush() -> None:
        for event in engine.feed_batch(batch, views=views):
            write(encode(event) + b"\n")
            summary.events += 1
        summary.samples += len(batch)
        batch.clear()

    for sample in samples:
        batch.append(sample)
        if len(batch) >= BATCH:
            flush()
    flush()
    summary.ignored = engine.counts.ignored
    return summary


def run(
    source: str,
    fmt: InputFormat,
    engine: Engine,
    out: BinaryIO,
    err: TextIO,
    *,
    room_sid: str | None = None,
    region: str = "unknown",
) -> ScoreSummary:
    """Score ``source`` (a path, or ``-`` for stdin); report skipped lines on ``err``.

    The first few skipped lines are printed, the rest counted (:class:`ErrorLines`).
    """
    name = "stdin" if source == "-" else Path(source).name
    errors = ErrorLines(err)

    def on_error(number: int, reason: str) -> None:
        errors(f"{name}:{number}: skipped: {reason}")

    stream = sys.stdin.buffer if source == "-" else Path(source).open("rb")  # noqa: SIM115
    try:
        if fmt == "samples":
            samples = samples_from_json_lines(stream, on_error)
        elif fmt == "rtcstats":

            def on_line_error(exc: RtcstatsLineError) -> None:
                on_error(exc.line_number, exc.reason)

            samples = samples_from_rtcstats(
                stream, dump_name=name, room_sid=room_sid, region=region, on_error=on_line_error
            )
        else:
            samples = samples_from_getstats(
                stream.read(),
                on_error,
                room_sid=room_sid or name,
                participant_sid=Path(name).stem,
                region=region,
            )
        summary = score(samples, engine, out.write)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        errors.close()
    summary.skipped = errors.count
    return summary
