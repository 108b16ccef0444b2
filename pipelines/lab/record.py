"""Every lab run as an rtcstats dump, so ``netquality score --format rtcstats`` re-scores it.

The format is jitsi rtcstats-server's (see :mod:`pipelines.adapters.rtcstats`): one
``[method, pcId, payload, timestamp_ms]`` JSON array per line, a ``connectionInfo`` line first,
``getstats`` payloads delta-compressed per peer connection (protocol 3: every live stat id is
present, unchanged fields are left out). To keep recorded runs small enough to ship as test
data, reports are trimmed to the stats and fields the adapter reads and numbers are rounded
to 4 significant digits (far finer than any threshold); what is kept is the browser's own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

CLIENT_PROTOCOL = "3.0"
KEPT_FIELDS: dict[str, frozenset[str]] = {
    "outbound-rtp": frozenset({
        "type", "kind", "mid", "rid", "ssrc", "rtxSsrc", "fecSsrc", "codecId", "remoteId",
        "mediaSourceId", "active", "bytesSent", "packetsSent", "targetBitrate", "frameWidth",
        "frameHeight", "framesPerSecond", "qualityLimitationReason", "retransmittedPacketsSent",
        "nackCount",
    }),
    "inbound-rtp": frozenset({
        "type", "kind", "mid", "ssrc", "rtxSsrc", "fecSsrc", "codecId", "trackIdentifier",
        "bytesReceived", "packetsReceived", "packetsLost", "jitter", "frameWidth",
        "frameHeight", "framesPerSecond", "framesDropped",
    }),
    "remote-inbound-rtp": frozenset({
        "type", "kind", "ssrc", "localId", "codecId", "packetsLost", "fractionLost", "jitter",
        "roundTripTime", "roundTripTimeMeasurements",
    }),
    "candidate-pair": frozenset({
        "type", "state", "nominated", "selected", "bytesSent", "bytesReceived",
        "availableOutgoingBitrate", "availableIncomingBitrate", "currentRoundTripTime",
        "localCandidateId", "remoteCandidateId",
    }),
    "transport": frozenset({"type", "selectedCandidatePairId", "dtlsState", "iceState"}),
    "codec": frozenset({"type", "mimeType"}),
    "media-source": frozenset({"type", "kind", "trackIdentifier"}),
}
"""Stat types and fields kept: what ``pipelines/adapters/getstats.py`` reads, plus a few
(nackCount, retransmissions, framesDropped) that explain a run to a person reading it."""


def _round(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value != 0:
        digits = 3 - math.floor(math.log10(abs(value)))
        rounded = round(value, digits)
        return round(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded
    return value


def trim(report: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The stats the scorer reads, with their useful fields, numbers rounded.

    Of the candidate pairs only the selected one is kept (the transport names it), so a
    two-minute dump does not carry every failed pair of ICE's checklist.
    """
    selected = {s.get("selectedCandidatePairId") for s in report.values()
                if isinstance(s, Mapping) and s.get("type") == "transport"}
    out: dict[str, dict[str, Any]] = {}
    for sid, stats in report.items():
        if not isinstance(stats, Mapping):
            continue
        kind = stats.get("type")
        fields = KEPT_FIELDS.get(kind) if isinstance(kind, str) else None
        if fields is None or (kind == "candidate-pair" and sid not in selected):
            continue
        out[sid] = {k: _round(v) for k, v in stats.items() if k in fields}
    return out


class RtcstatsWriter:
    """Writes one dump: ``connectionInfo``, then events and delta-compressed ``getstats``."""

    def __init__(self, out: IO[str], info: Mapping[str, Any]) -> None:
        self.out = out
        self.previous: dict[str, dict[str, dict[str, Any]]] = {}
        self._write(["connectionInfo", None, {"clientProtocol": CLIENT_PROTOCOL, **info},
                     None])

    def record(self, method: str, pc_id: str, payload: Any, timestamp_ms: int) -> None:
        if method == "getstats":
            self.getstats(pc_id, payload, timestamp_ms)
        else:
            self._write([method, pc_id, payload, timestamp_ms])

    def getstats(self, pc_id: str, report: Mapping[str, Any], timestamp_ms: int) -> None:
        full = trim(report)
        before = self.previous.get(pc_id, {})
        delta: dict[str, Any] = {}
        for sid, stats in full.items():
            old = before.get(sid, {})
            delta[sid] = {k: v for k, v in stats.items() if old.get(k) != v}
        delta["timestamp"] = timestamp_ms
        self.previous[pc_id] = full
        self._write(["getstats", pc_id, delta, timestamp_ms])

    def _write(self, entry: list[Any]) -> None:
        self.out.write(json.dumps(entry, separators=(",", ":")) + "\n")


def open_dump(path: Path, info: Mapping[str, Any]) -> tuple[IO[str], RtcstatsWriter]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("w", encoding="utf-8")
    return handle, RtcstatsWriter(handle, info)
