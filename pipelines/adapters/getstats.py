"""Turn one W3C ``RTCStatsReport`` snapshot into a ``netquality.stats.v1`` sample.

Real browsers disagree on shapes and fields (Chrome old and new, Firefox, Safari), and they
emit values the contract rejects (negative ``packetsLost``, ``fractionLost`` above 1). This
module absorbs those differences once, at the edge, so the engine only sees valid samples.
Everything here is pure except :func:`sample_from_getstats_file`.
"""

from __future__ import annotations

import math
from collections import Counter as Tally
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec

from pipelines.contracts.codec import decode_json
from pipelines.contracts.stats import (
    MAX_TRACKS,
    STATS_SCHEMA,
    CandidatePair,
    ConnectionState,
    InboundTrack,
    OutboundTrack,
    RemoteInbound,
    StatsSample,
    Topology,
)
from pipelines.contracts.types import MAX_COUNTER

Stats = Mapping[str, Any]
"""One RTCStats dictionary (``{"id", "type", "timestamp", ...}``)."""

Report = dict[str, Stats]
"""An RTCStatsReport as a plain map of stat id to stats."""

# Mirrors of the bounds in pipelines.contracts.types (not exported there as numbers).
MAX_SECONDS = 60.0
MAX_BITS_PER_SECOND = 1e11
MAX_FRAME_SIDE = 16384
MAX_FPS = 1000.0
MAX_SID_LENGTH = 128

_CONNECTION_STATES: frozenset[str] = frozenset(get_args(ConnectionState))
_QUALITY_LIMITATION_REASONS = frozenset({"none", "cpu", "bandwidth", "other"})
# Streams whose codec only carries repair data; their bytes are overhead, not a track.
_REDUNDANCY_CODECS = frozenset({"video/rtx", "audio/rtx", "video/ulpfec", "video/flexfec-03"})

_W3C_TO_CONNECTION_STATE: dict[str, ConnectionState] = {
    "new": "new",
    "checking": "connecting",
    "connecting": "connecting",
    "connected": "connected",
    "completed": "connected",
    # The browser keeps trying on its own from "disconnected"; it is not gone yet.
    "disconnected": "reconnecting",
    # ICE gave up: the network is broken (level 0), but the participant is still in the call
    # and the app may restart ICE; only a closed connection means the participant left.
    "failed": "failed",
    "closed": "disconnected",
}


def map_connection_state(state: str) -> ConnectionState:
    """Map a W3C ``iceConnectionState`` / ``connectionState`` value to our ``ConnectionState``.

    ``disconnected`` becomes ``reconnecting`` because ICE recovers from it by itself;
    ``failed`` stays ``failed`` (broken, level 0, but still in the call: an ICE restart can
    recover it); only ``closed`` becomes ``disconnected``, which means the participant left.
    Raises ``ValueError`` for a value that is neither (so typos do not pass as "connected").
    """
    try:
        return _W3C_TO_CONNECTION_STATE[state.strip().lower()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown W3C connection state: {state!r}") from None


def normalize_report(raw: Any) -> Report:
    """Accept the three shapes real code serialises a report in and return id -> stats.

    - a dict ``{id: stats}`` (what ``Object.fromEntries(report)`` and rtcstats produce);
    - a list of stats objects, each with ``id`` and ``type`` (``[...report.values()]``);
    - a list of ``{"key": id, "value": stats}`` (``[...report.entries()]`` mapped to objects).
    Entries that are not objects are ignored; anything else raises ``ValueError``.
    """
    if isinstance(raw, Mapping):
        return {str(k): v for k, v in raw.items() if isinstance(v, Mapping)}
    if isinstance(raw, list):
        report: Report = {}
        for entry in raw:
            if not isinstance(entry, Mapping):
                continue
            if "key" in entry and isinstance(entry.get("value"), Mapping):
                report[str(entry["key"])] = entry["value"]
            elif "id" in entry:
                report[str(entry["id"])] = entry
        return report
    raise ValueError(
        f"not an RTCStatsReport: expected an object or an array, got {type(raw).__name__}"
    )


def report_timestamp(report: Report) -> int | None:
    """The report's own time in ms: the most common positive stat ``timestamp``.

    The mode, not the max: ``remote-*`` stats carry the (older) time of the last RTCP report,
    and hand-assembled snapshots sometimes hold a stray entry from another capture.
    """
    tally = Tally(
        round(ts) for s in report.values() if (ts := _number(s.get("timestamp"))) and ts > 0
    )
    if not tally:
        return None
    best = max(tally.values())
    return max(ts for ts, n in tally.items() if n == best)


def sample_from_report(
    report: Any,
    *,
    room_sid: str,
    participant_sid: str,
    region: str,
    seq: int,
    connection_state: ConnectionState = "connected",
    timestamp: int | None = None,
    muted_tracks: frozenset[str] = frozenset(),
    topology: Topology | None = None,
) -> StatsSample:
    """Build one ``StatsSample`` from one getStats snapshot plus the participant's identity.

    ``muted_tracks``: ids of the local MediaStreamTracks the app has muted or disabled (not
    in getStats); their outbound tracks say ``muted``, so their silence is not a stall.
    ``topology``: ``"sfu"`` or ``"p2p"`` as the app knows it (not in getStats either); the
    room can attribute a publisher's uplink trouble only through an SFU.

    ``connection_state`` is already in our vocabulary (use :func:`map_connection_state` on W3C
    values: "disconnected" means different things in the two). ``timestamp`` defaults to the
    report's own time. Streams without usable counters are skipped rather than failing the
    whole sample: one odd track must not blind the scorer to the others.
    """
    stats = normalize_report(report)
    if connection_state not in _CONNECTION_STATES:
        raise ValueError(f"connection_state must be one of {sorted(_CONNECTION_STATES)}")
    if timestamp is None:
        timestamp = report_timestamp(stats)
        if timestamp is None:
            raise ValueError("the report has no timestamp; pass timestamp=")
    return StatsSample(
        schema=STATS_SCHEMA,
        room_sid=room_sid,
        participant_sid=participant_sid,
        region=region,
        timestamp=int(timestamp),
        seq=seq,
        connection_state=connection_state,
        candidate_pair=candidate_pair_from_report(stats),
        outbound=_cap(outbound_tracks(stats, muted_tracks), key=lambda t: t.bytes_sent),
        inbound=_cap(inbound_tracks(stats), key=lambda t: t.bytes_received),
        topology=topology,
    )


def sample_from_getstats_file(
    path: str | Path,
    *,
    room_sid: str | None = None,
    participant_sid: str | None = None,
    region: str = "unknown",
    seq: int = 1,
    connection_state: ConnectionState = "connected",
    timestamp: int | None = None,
) -> StatsSample:
    """Read one JSON getStats snapshot file (any of the three shapes) into a sample.

    Room and participant default to the file's stem, so a folder of snapshots can be scored
    without inventing identities.
    """
    path = Path(path)
    raw = decode_json(path.read_bytes())
    return sample_from_report(
        raw,
        room_sid=room_sid or path.stem,
        participant_sid=participant_sid or path.stem,
        region=region,
        seq=seq,
        connection_state=connection_state,
        timestamp=timestamp,
    )


# --- candidate pair ---------------------------------------------------------------------


def selected_candidate_pair(report: Report) -> Stats | None:
    """The candidate pair carrying the media, by the most authoritative signal available.

    1. ``transport.selectedCandidatePairId`` (Chrome, Safari, newer Firefox);
    2. Firefox's non-standard ``selected: true``;
    3. ``nominated`` and ``state == "succeeded"`` (older browsers without 1 or 2);
    4. the pair that moved the most bytes, if any moved at all.
    With several transports (unbundled media) the busiest selected pair wins.
    """
    pairs = {sid: s for sid, s in report.items() if _type(s) == "candidatepair"}
    if not pairs:
        return None
    chosen = [
        pairs[pid]
        for s in report.values()
        if _type(s) == "transport" and (pid := s.get("selectedCandidatePairId")) in pairs
    ]
    if not chosen:
        chosen = [p for p in pairs.values() if p.get("selected") is True]
    if not chosen:
        chosen = [
            p
            for p in pairs.values()
            if p.get("nominated") is True and p.get("state") == "succeeded"
        ]
    if not chosen:
        chosen = [p for p in pairs.values() if _pair_bytes(p) > 0]
    return max(chosen, key=_pair_bytes) if chosen else None


def candidate_pair_from_report(report: Report) -> CandidatePair | None:
    """Capacity and RTT of the selected pair; ``None`` when the browser gives none of them.

    Firefox has no ``availableOutgoingBitrate`` nor ``currentRoundTripTime``: the sample
    then simply has no candidate pair, and the engine falls back to per-track RTT.
    """
    pair = selected_candidate_pair(report)
    if pair is None:
        return None
    out = CandidatePair(
        available_outgoing_bitrate=_bitrate(pair.get("availableOutgoingBitrate")),
        available_incoming_bitrate=_bitrate(pair.get("availableIncomingBitrate")),
        current_round_trip_time=_seconds(pair.get("currentRoundTripTime")),
    )
    if out == CandidatePair():
        return None
    return out


def _pair_bytes(pair: Stats) -> int:
    return (_counter(pair.get("bytesSent")) or 0) + (_counter(pair.get("bytesReceived")) or 0)


# --- tracks ---------------------------------------------------------------------------------


def outbound_tracks(
    report: Report, muted_tracks: frozenset[str] = frozenset()
) -> list[OutboundTrack]:
    """One entry per sending RTP stream (simulcast layers stay separate, named by ``rid``).

    Skipped: streams without ``bytesSent``/``packetsSent``, layers switched off
    (``active: false``), streams that have sent no media payload yet (``bytesSent`` counts
    payload only; Safari keeps an unused layer at 0 bytes / 2 packets), and RTX/FEC streams.
    """
    streams = [
        (sid, s)
        for sid, s in report.items()
        if _type(s) == "outboundrtp" and s.get("isRemote") is not True
    ]
    bases = _track_bases(report, streams)
    names = _track_names(streams, bases)
    remotes = _RemoteIndex(report)
    repair = _repair_ssrcs(report)
    tracks: list[OutboundTrack] = []
    track_bases: list[str] = []
    for sid, s in streams:
        kind = _kind(s)
        bytes_sent = _counter(s.get("bytesSent"))
        packets_sent = _counter(s.get("packetsSent"))
        if kind is None or bytes_sent is None or packets_sent is None:
            continue
        if s.get("active") is False or bytes_sent == 0:
            continue
        if _is_repair_stream(report, s, repair):
            continue
        sender_track = _linked(report, s, "trackId")
        muted = bool(muted_tracks) and _track_identifier(report, s) in muted_tracks
        tracks.append(
            OutboundTrack(
                track_sid=names[sid],
                kind=kind,
                bytes_sent=bytes_sent,
                packets_sent=packets_sent,
                target_bitrate=_bitrate(s.get("targetBitrate")),
                frame_width=_frame_side(_first(s, sender_track, key="frameWidth")),
                frame_height=_frame_side(_first(s, sender_track, key="frameHeight")),
                frames_per_second=_fps(_first(s, sender_track, key="framesPerSecond")),
                quality_limitation_reason=_quality_reason(s.get("qualityLimitationReason")),
                remote=remotes.remote_for(sid, s),
                muted=True if muted else None,
            )
        )
        track_bases.append(bases[sid])
    return _split_shared_target(tracks, track_bases)


def inbound_tracks(report: Report) -> list[InboundTrack]:
    """One entry per receiving RTP stream that has received some media payload.

    SFUs pre-allocate receivers that never get media (Jitsi shows several, some with a few
    padding packets but 0 payload bytes); they are dropped so they do not count as
    subscribed tracks with zero bitrate.
    ``packetsLost`` can go negative in RTP (duplicates); it is clamped to 0.
    """
    streams = [
        (sid, s)
        for sid, s in report.items()
        if _type(s) == "inboundrtp" and s.get("isRemote") is not True
    ]
    names = _track_names(streams, _track_bases(report, streams))
    repair = _repair_ssrcs(report)
    tracks: list[InboundTrack] = []
    for sid, s in streams:
        kind = _kind(s)
        bytes_received = _counter(s.get("bytesReceived"))
        packets_received = _counter(s.get("packetsReceived"))
        packets_lost = _lost(s.get("packetsLost"))
        if kind is None or bytes_received is None or packets_received is None:
            continue
        if packets_lost is None:
            continue
        if bytes_received == 0:
            continue
        if _is_repair_stream(report, s, repair):
            continue
        tracks.append(
            InboundTrack(
                track_sid=names[sid],
                kind=kind,
                bytes_received=bytes_received,
                packets_received=packets_received,
                packets_lost=packets_lost,
                jitter=_seconds(s.get("jitter")),
            )
        )
    return tracks


class _RemoteIndex:
    """Finds the ``remote-inbound-rtp`` that reports on one of our outbound streams."""

    def __init__(self, report: Report) -> None:
        self._report = report
        self._by_local: dict[str, Stats] = {}
        self._by_ssrc: dict[tuple[Any, str | None], Stats] = {}
        for s in report.values():
            if not _is_remote_inbound(s):
                continue
            if isinstance(local := s.get("localId"), str):
                self._by_local[local] = s
            if s.get("ssrc") is not None:
                self._by_ssrc[(s["ssrc"], _kind(s))] = s

    def remote_for(self, sid: str, outbound: Stats) -> RemoteInbound | None:
        remote = self._report.get(str(outbound.get("remoteId")))
        if remote is None or not _is_remote_inbound(remote):
            remote = self._by_local.get(sid) or self._by_ssrc.get(
                (outbound.get("ssrc"), _kind(outbound))
            )
        if remote is None:
            return None
        out = RemoteInbound(
            packets_lost=_lost(remote.get("packetsLost")),
            fraction_lost=_fraction(remote.get("fractionLost")),
            jitter=_seconds(remote.get("jitter")),
            round_trip_time=_seconds(remote.get("roundTripTime")),
        )
        return None if out == RemoteInbound() else out


def _is_remote_inbound(s: Stats) -> bool:
    # Old Firefox reported the remote side as "inbound-rtp" with isRemote: true.
    t = _type(s)
    return t == "remoteinboundrtp" or (t == "inboundrtp" and s.get("isRemote") is True)


def _track_bases(report: Report, streams: list[tuple[str, Stats]]) -> dict[str, str]:
    """The track a stream belongs to: ``mid:<mid>[:<rid>]``, else the track id, else the stat id.

    The mid names the transceiver, which keeps its counters across ``replaceTrack``; the
    MediaStreamTrack id is the next best (older Chrome and Safari have no mid on outbound).
    """
    bases: dict[str, str] = {}
    for sid, s in streams:
        mid, rid = s.get("mid"), s.get("rid")
        if isinstance(mid, str) and mid:
            bases[sid] = f"mid:{mid}" + (f":{rid}" if isinstance(rid, str) and rid else "")
        else:
            bases[sid] = _track_identifier(report, s) or sid
    return bases


def _track_names(streams: list[tuple[str, Stats]], bases: Mapping[str, str]) -> dict[str, str]:
    """A ``trackSid`` per stream, unique within the direction.

    Where two streams still share a base (simulcast layers without rid, plan-b) the ssrc or
    stat id is appended so their counters never mix.
    """
    counts = Tally(bases.values())
    names: dict[str, str] = {}
    for sid, s in streams:
        name = bases[sid]
        if counts[name] > 1:
            name = f"{name}:{s.get('ssrc') if s.get('ssrc') is not None else sid}"
        if len(name) > MAX_SID_LENGTH:
            name = sid[:MAX_SID_LENGTH]
        names[sid] = name
    return names


def _split_shared_target(tracks: list[OutboundTrack], bases: list[str]) -> list[OutboundTrack]:
    """Keep a sender-wide ``targetBitrate`` once instead of once per simulcast layer.

    WebKit reports the whole sender's target on every encoding (the safari-relay dump shows
    527628 on all three layers while the link offers 609468); Chrome reports each layer's
    own. When all layers of one track carry the same positive target, it is the total, so
    only the first layer keeps it and a sum over tracks gives the real demand.
    """
    groups: dict[str, list[int]] = {}
    for index, base in enumerate(bases):
        groups.setdefault(base, []).append(index)
    out = list(tracks)
    for indexes in groups.values():
        targets = {tracks[i].target_bitrate for i in indexes}
        if len(indexes) > 1 and len(targets) == 1 and (targets.pop() or 0) > 0:
            for i in indexes[1:]:
                out[i] = msgspec.structs.replace(tracks[i], target_bitrate=None)
    return out


def _track_identifier(report: Report, s: Stats) -> str | None:
    for candidate in (s, _linked(report, s, "mediaSourceId"), _linked(report, s, "trackId")):
        if candidate is not None:
            ident = candidate.get("trackIdentifier")
            if isinstance(ident, str) and ident:
                return ident
    return None


def _repair_ssrcs(report: Report) -> set[Any]:
    """SSRCs that newer Chrome declares as the RTX/FEC companions of a media stream."""
    return {
        s[key]
        for s in report.values()
        if _type(s) in ("inboundrtp", "outboundrtp")
        for key in ("rtxSsrc", "fecSsrc")
        if s.get(key) is not None
    }


def _is_repair_stream(report: Report, s: Stats, repair_ssrcs: set[Any]) -> bool:
    if s.get("ssrc") is not None and s.get("ssrc") in repair_ssrcs:
        return True
    codec = _linked(report, s, "codecId")
    mime = codec.get("mimeType") if codec is not None else None
    return isinstance(mime, str) and mime.lower() in _REDUNDANCY_CODECS


def _cap(tracks: list[Any], *, key: Any) -> list[Any]:
    """Keep at most ``MAX_TRACKS`` (the busiest), in their original order."""
    if len(tracks) <= MAX_TRACKS:
        return tracks
    keep = {id(t) for t in sorted(tracks, key=key, reverse=True)[:MAX_TRACKS]}
    return [t for t in tracks if id(t) in keep]


# --- field helpers ---------------------------------------------------------------------------


def _type(s: Stats) -> str:
    """Stat type without hyphens: old Firefox wrote ``inboundrtp``, the spec ``inbound-rtp``."""
    t = s.get("type")
    return t.replace("-", "").lower() if isinstance(t, str) else ""


def _kind(s: Stats) -> Literal["audio", "video"] | None:
    for key in ("kind", "mediaType"):
        value = s.get(key)
        if value == "audio":
            return "audio"
        if value == "video":
            return "video"
    return None


def _linked(report: Report, s: Stats, key: str) -> Stats | None:
    ref = s.get(key)
    return report.get(ref) if isinstance(ref, str) else None


def _first(*sources: Stats | None, key: str) -> Any:
    for source in sources:
        if source is not None and source.get(key) is not None:
            return source[key]
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _counter(value: Any) -> int | None:
    n = _number(value)
    if n is None or n < 0 or n > MAX_COUNTER:
        return None
    return int(n)


def _lost(value: Any) -> int | None:
    n = _number(value)
    return None if n is None else min(max(int(n), 0), MAX_COUNTER)


def _seconds(value: Any) -> float | None:
    """Non-negative seconds, capped at the contract's 60 s (already 'broken' for us)."""
    n = _number(value)
    return None if n is None or n < 0 else min(n, MAX_SECONDS)


def _bitrate(value: Any) -> float | None:
    """Bits/s; above 100 Gbit/s it is a unit bug, not a network, so it is dropped."""
    n = _number(value)
    return None if n is None or n < 0 or n > MAX_BITS_PER_SECOND else n


def _fraction(value: Any) -> float | None:
    n = _number(value)
    return None if n is None else min(max(n, 0.0), 1.0)


def _frame_side(value: Any) -> int | None:
    n = _number(value)
    return None if n is None or n < 0 or n > MAX_FRAME_SIDE else int(n)


def _fps(value: Any) -> float | None:
    n = _number(value)
    return None if n is None or n < 0 or n > MAX_FPS else n


def _quality_reason(value: Any) -> Literal["none", "cpu", "bandwidth", "other"] | None:
    return value if value in _QUALITY_LIMITATION_REASONS else None
