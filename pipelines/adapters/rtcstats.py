"""Replay a jitsi rtcstats-server dump as ``netquality.stats.v1`` samples.

A dump is newline-delimited JSON, one ``[method, pcId | null, payload, timestamp_ms]`` per
line, starting with ``connectionInfo``. ``getstats`` payloads are delta-compressed per peer
connection; :func:`decompress` rebuilds the full report exactly as rtcstats-server's
``getstats-deltacompression.js`` does. Each peer connection becomes its own participant, so
a dump of a call through an SFU plus a P2P leg yields two participants.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.adapters.getstats import Report, map_connection_state, sample_from_report
from pipelines.contracts.codec import ContractError, decode_json
from pipelines.contracts.stats import ConnectionState, StatsSample

_SEVERITY: dict[ConnectionState, int] = {
    "connected": 0,
    "new": 1,
    "connecting": 2,
    "reconnecting": 3,
    "failed": 4,
    "disconnected": 5,
}
_ICE_EVENTS = frozenset({"oniceconnectionstatechange", "iceconnectionstatechange"})
_PC_EVENTS = frozenset({"onconnectionstatechange", "connectionstatechange"})


class RtcstatsLineError(ValueError):
    """A dump line that cannot be read; ``line_number`` is 1-based, as editors show it."""

    def __init__(self, line_number: int, reason: str, source: str | None = None) -> None:
        self.line_number = line_number
        self.reason = reason
        self.source = source
        super().__init__(f"{source or 'rtcstats dump'}, line {line_number}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.line_number, self.reason, self.source))


def decompress(
    base: Mapping[str, Any], delta: Mapping[str, Any], *, drop_missing: bool = True
) -> Report:
    """Merge one delta-compressed ``getstats`` payload into the previous full report.

    Mirrors upstream ``decompress()``: the payload's own ``timestamp`` is the sample time;
    a stat whose ``timestamp`` is 0 takes the sample time, one without a timestamp keeps its
    old one; fields are overwritten one by one; with protocol >= 3 (``drop_missing``) a stat
    id absent from the payload was removed. Unlike upstream, neither input is mutated.
    """
    sample_time = delta.get("timestamp")
    merged: dict[str, dict[str, Any]] = {}
    if not drop_missing:
        merged = {sid: dict(stats) for sid, stats in base.items()}
    for sid, change in delta.items():
        if sid == "timestamp" or not isinstance(change, Mapping):
            continue
        previous = base.get(sid)
        stats = dict(previous) if isinstance(previous, Mapping) else {}
        stats.update(change)
        if change.get("timestamp") == 0:
            stats["timestamp"] = sample_time
        elif not change.get("timestamp") and previous is not None:
            stats["timestamp"] = previous.get("timestamp")
        merged[sid] = stats
    return merged


@dataclass
class _PeerConnection:
    """What the replay knows about one peer connection so far."""

    report: Report = field(default_factory=dict)
    ice_state: ConnectionState | None = None
    pc_state: ConnectionState | None = None
    closed: bool = False
    seq: int = 0

    def connection_state(self) -> ConnectionState:
        """The worse of ICE and PC state: the spec's own aggregation rule, and robust to
        old browsers that only fire one of the two events."""
        if self.closed:
            return "disconnected"
        known = [s for s in (self.ice_state, self.pc_state) if s is not None]
        return max(known, key=_SEVERITY.__getitem__) if known else "new"


def samples_from_rtcstats(
    lines: Iterable[str | bytes],
    *,
    dump_name: str,
    room_sid: str | None = None,
    region: str = "unknown",
    on_error: Callable[[RtcstatsLineError], None] | None = None,
) -> Iterator[StatsSample]:
    """Yield one sample per ``getstats`` line, per peer connection, in file order.

    The participant is ``"<dump_name>-<pcId>"``, the room ``room_sid`` (default the dump
    name), ``seq`` counts 1, 2, 3 per peer connection and ``timestamp`` is the line's own.
    The connection state is the one the state-change lines before it left behind.
    Unknown methods are skipped. A malformed line raises :class:`RtcstatsLineError`, or,
    when ``on_error`` is given, is handed to it and skipped so the rest still replays.
    """
    room = room_sid or dump_name
    pcs: dict[str, _PeerConnection] = {}
    drop_missing = True
    for number, raw in enumerate(lines, start=1):
        try:
            entry = _parse_line(raw, number, dump_name)
            if entry is None:
                continue
            method, pc_id, payload, line_time = entry
            if method == "connectionInfo":
                drop_missing = _protocol_drops_missing(payload)
            elif pc_id is None:
                continue
            elif method == "getstats":
                pc = pcs.setdefault(pc_id, _PeerConnection())
                if not isinstance(payload, Mapping):
                    raise RtcstatsLineError(
                        number, "invalid_dump: getstats payload is not an object", dump_name
                    )
                pc.report = decompress(pc.report, payload, drop_missing=drop_missing)
                pc.seq += 1
                timestamp = _line_timestamp(line_time, payload, number, dump_name)
                yield sample_from_report(
                    pc.report,
                    room_sid=room,
                    participant_sid=f"{dump_name}-{pc_id}",
                    region=region,
                    seq=pc.seq,
                    connection_state=pc.connection_state(),
                    timestamp=timestamp,
                )
            else:
                _apply_event(pcs.setdefault(pc_id, _PeerConnection()), method, payload)
        except RtcstatsLineError as exc:
            if on_error is None:
                raise
            on_error(exc)


def samples_from_rtcstats_file(
    path: str | Path,
    *,
    room_sid: str | None = None,
    region: str = "unknown",
    on_error: Callable[[RtcstatsLineError], None] | None = None,
) -> Iterator[StatsSample]:
    """Replay a dump file; the dump name (participant prefix, default room) is its file name."""
    path = Path(path)
    with path.open("r", encoding="utf-8") as lines:
        yield from samples_from_rtcstats(
            lines, dump_name=path.name, room_sid=room_sid, region=region, on_error=on_error
        )


def _parse_line(
    raw: str | bytes, number: int, source: str
) -> tuple[str, str | None, Any, Any] | None:
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if not text.strip():
        return None
    try:
        entry = decode_json(text)
    except ContractError as exc:
        raise RtcstatsLineError(number, f"{exc.code}: {exc.message}", source) from None
    if not isinstance(entry, list) or not entry or not isinstance(entry[0], str):
        raise RtcstatsLineError(
            number, "invalid_dump: expected a [method, pcId, payload, timestamp] line", source
        )
    padded = [*entry, None, None, None][:4]
    pc_id = padded[1] if isinstance(padded[1], str) else None
    return entry[0], pc_id, padded[2], padded[3]


def _apply_event(pc: _PeerConnection, method: str, payload: Any) -> None:
    """Track the state-change lines; other PeerConnection API calls do not matter here."""
    if method in _ICE_EVENTS or method in _PC_EVENTS:
        try:
            state = map_connection_state(payload)
        except ValueError:
            return
        if method in _ICE_EVENTS:
            pc.ice_state = state
        else:
            pc.pc_state = state
    elif method == "close":
        # close() fires no state-change event, so the dump shows only this call.
        pc.closed = True


def _protocol_drops_missing(info: Any) -> bool:
    """Protocol 3 and later send every live stat id each time, so a missing id was removed;
    older clients left unchanged stats out, so a missing id must be kept."""
    if isinstance(info, str):
        try:
            info = decode_json(info)
        except ContractError:
            return True
    version = info.get("clientProtocol") if isinstance(info, Mapping) else None
    match = re.match(r"\s*(\d+)", str(version)) if version is not None else None
    return match is None or int(match.group(1)) >= 3


def _line_timestamp(line_time: Any, payload: Mapping[str, Any], number: int, source: str) -> int:
    for candidate in (line_time, payload.get("timestamp")):
        if isinstance(candidate, int | float) and not isinstance(candidate, bool) and candidate > 0:
            return round(candidate)
    raise RtcstatsLineError(number, "invalid_dump: getstats line has no timestamp", source)
