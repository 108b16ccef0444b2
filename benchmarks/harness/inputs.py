"""What the bench sends: the simulator's sample mix, as batch envelopes or bare samples, and
the level events the offline engine says a drain must deliver.

:func:`bench_samples` is the one place to swap in another source without touching the
measurements."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

ENVELOPE_SAMPLES = 250
"""Samples per envelope in the bench's backlog: what a publisher gathers per partition per
flush (the contract allows 1,000 and 1 MiB; ~1.4 KiB samples give ~360 KiB here)."""


def bench_samples(samples: int, participants: int, seed: int, topology: str = "") -> list[Any]:
    """The bench's realistic sample mix: the demo's simulator (``pipelines/simulate``), second
    by second, each participant in seq order.

    Rooms of 4-6 participants in three regions on real network traces, with the default
    script's incident, reconnects, HD switches, audio-only participants, joins and leaves,
    scaled to ``participants`` (about 5 per room); the first ``samples`` samples, each
    saying ``topology`` when given (``sfu``: the whole mix is attributed).
    """
    from pipelines.simulate.generator import Simulation  # noqa: PLC0415
    from pipelines.simulate.scenario import default_scenario  # noqa: PLC0415

    scenario = default_scenario(max(2, round(participants / 5)), (4, 6), seed=seed)
    # Sample times end about now, as if just recorded: the room stages judge an event's time
    # against when it reached the stream and drop it minutes off (pipelines/quality/event_time).
    seconds = -(-samples // max(participants, 1))
    start_ms = (int(time.time()) - seconds) * 1000
    out: list[Any] = []
    for second in Simulation(scenario, seed=seed, start_ms=start_ms):
        out.extend(second)
        if len(out) >= samples:
            break
    if topology:
        import msgspec  # noqa: PLC0415

        return [msgspec.structs.replace(s, topology=topology) for s in out[:samples]]
    return out[:samples]


def envelopes(
    samples: Iterable[Any], partitions: int, per_envelope: int = ENVELOPE_SAMPLES
) -> list[tuple[int, bytes, bytes, int]]:
    """Batch envelopes as a publisher makes them: samples grouped by the default partition
    of their ``participantSid``, in input order; (partition, key, value, samples in it)."""
    from pipelines.contracts import encode  # noqa: PLC0415
    from pipelines.streaming.levels import PartitionOf  # noqa: PLC0415

    partition_of = PartitionOf(partitions)
    open_: dict[int, list[tuple[str, bytes]]] = {}
    out: list[tuple[int, bytes, bytes, int]] = []

    def close(p: int) -> None:
        items = open_.pop(p)
        value = b'{"schema":"netquality.stats.batch.v1","samples":['
        value += b",".join(v for _, v in items) + b"]}"
        out.append((p, items[0][0].encode(), value, len(items)))

    for s in samples:
        p = partition_of(s.participant_sid)
        items = open_.setdefault(p, [])
        items.append((s.participant_sid, encode(s)))
        if len(items) >= per_envelope:
            close(p)
    for p in list(open_):
        close(p)
    return out


def single_messages(samples: Iterable[Any], partitions: int) -> list[tuple[int, bytes, bytes, int]]:
    """One bare sample per message, keyed by participant, on its default partition."""
    from pipelines.contracts import encode  # noqa: PLC0415
    from pipelines.streaming.levels import PartitionOf  # noqa: PLC0415

    partition_of = PartitionOf(partitions)
    return [
        (partition_of(s.participant_sid), s.participant_sid.encode(), encode(s), 1) for s in samples
    ]


def expected_event_ids(samples: list[Any]) -> set[str]:
    """Event ids the offline engine gives (without staleness): what a drain must deliver.

    Of a mix that attributes (``topology`` sfu), only the ids scored alike with and without
    the rooms' views: a drain outruns the views' 2 s lag (docs/architecture.md, Whose
    network), so where attribution changes an event, which one the worker emits depends on
    how far its views had got."""
    from pipelines.quality import Engine  # noqa: PLC0415

    ids = {e.event_id for e in Engine().feed_batch(samples)}
    if any(s.topology == "sfu" for s in samples):
        import io  # noqa: PLC0415

        from pipelines.contracts import decode_level  # noqa: PLC0415
        from pipelines.scorer import score  # noqa: PLC0415

        out = io.BytesIO()
        score(samples, Engine(), out.write)
        ids &= {decode_level(line).event_id for line in out.getvalue().splitlines()}
    return {i for i in ids if not i.endswith((":stale", ":expired"))}
