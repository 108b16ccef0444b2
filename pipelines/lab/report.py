"""A lab run read back: per-second timeline of applied impairment, getStats and levels.

Pure over its inputs (the profile, the dump's samples, the level events), so the offline
corpus tests read recorded runs with the same code that prints a live one. Writes the JSON
report and the PNG chart; prints the table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.adapters import samples_from_rtcstats
from pipelines.contracts import LevelEvent, StatsSample
from pipelines.lab.profile import Profile
from pipelines.quality import Engine, load_thresholds


@dataclass(frozen=True, slots=True)
class Observed:
    """What one participant's getStats showed during one second (None: not reported)."""

    fraction_lost: float | None
    """Video ``remote-inbound-rtp.fractionLost``: the far end's RTCP report of our loss."""
    rtt_ms: float | None
    available_kbps: float | None
    """Selected pair's ``availableOutgoingBitrate``: the send-side bandwidth estimate."""
    video_kbps: float | None
    """Video send rate from ``bytesSent`` deltas."""
    state: str


@dataclass(frozen=True, slots=True)
class Second:
    t_s: int
    applied: str
    levels: dict[str, int | None]
    limited_by: dict[str, str | None]
    observed: dict[str, Observed]


def dump_samples(path: Path) -> list[StatsSample]:
    with path.open(encoding="utf-8") as lines:
        return list(samples_from_rtcstats(lines, dump_name=path.name, room_sid=path.stem))


def rescore(samples: Iterable[StatsSample], thresholds: Path | None = None) -> list[LevelEvent]:
    """The dump scored offline with today's engine (what ``netquality score`` prints)."""
    return Engine(load_thresholds(thresholds)).feed_batch(list(samples))


def observations(samples: Sequence[StatsSample], start_ms: int) -> dict[str, dict[int, Observed]]:
    """Per participant, per second since ``start_ms``: the getStats figures that matter."""
    out: dict[str, dict[int, Observed]] = {}
    previous: dict[str, StatsSample] = {}
    for s in samples:
        second = (s.timestamp - start_ms) // 1000
        video = next((t for t in s.outbound if t.kind == "video"), None)
        kbps = None
        prev = previous.get(s.participant_sid)
        if video is not None and prev is not None and s.timestamp > prev.timestamp:
            before = next((t for t in prev.outbound if t.track_sid == video.track_sid), None)
            if before is not None and video.bytes_sent >= before.bytes_sent:
                kbps = (video.bytes_sent - before.bytes_sent) * 8 / (s.timestamp - prev.timestamp)
        previous[s.participant_sid] = s
        remote = video.remote if video is not None else None
        pair = s.candidate_pair
        rtt = (remote.round_trip_time if remote and remote.round_trip_time is not None
               else pair.current_round_trip_time if pair else None)
        out.setdefault(s.participant_sid, {})[second] = Observed(
            fraction_lost=remote.fraction_lost if remote else None,
            rtt_ms=round(rtt * 1000, 1) if rtt is not None else None,
            available_kbps=(round(pair.available_outgoing_bitrate / 1000)
                            if pair and pair.available_outgoing_bitrate is not None else None),
            video_kbps=round(kbps) if kbps is not None else None,
            state=s.connection_state,
        )
    return out


def level_at(events: Sequence[LevelEvent], sid: str, at_ms: int) -> LevelEvent | None:
    """The participant's level event in force at ``at_ms`` (events are changes)."""
    current = None
    for e in events:
        if e.participant_sid == sid and e.timestamp <= at_ms and (
            current is None or e.timestamp >= current.timestamp
        ):
            current = e
    return current


def timeline(profile: Profile, start_ms: int, sids: Mapping[str, str],
             events: Sequence[LevelEvent], samples: Sequence[StatsSample],
             sample_sids: Mapping[str, str] | None = None) -> list[Second]:
    """One row per second of the profile. ``sids`` maps participant label -> the sid of its
    level events; ``sample_sids`` label -> the sid in ``samples`` (default the same): a dump
    names its participants after the file and peer connection, the pipeline after the call."""
    seen = observations(samples, start_ms)
    sample_sids = sample_sids or sids
    empty = Observed(None, None, None, None, "-")
    rows = []
    for t in range(int(profile.duration_s)):
        at_ms = start_ms + t * 1000 + 999
        levels, limited, observed = {}, {}, {}
        for label, sid in sids.items():
            event = level_at(events, sid, at_ms)
            levels[label] = event.level if event else None
            limited[label] = event.limited_by if event else None
            observed[label] = seen.get(sample_sids[label], {}).get(t, empty)
        rows.append(Second(t, profile.at(t + 0.5).label, levels, limited, observed))
    return rows


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def table(rows: Sequence[Second]) -> str:
    """The timeline as plain text: applied impairment, then per participant level and stats."""
    labels = list(rows[0].levels) if rows else []
    head = f"{'t':>3}  {'applied':34}" + "".join(
        f" | {who}: lvl {'loss':>5} {'rtt':>5} {'avail':>6} {'video':>5} limitedBy"
        .ljust(60) for who in labels)
    lines = [head, "-" * len(head)]
    for r in rows:
        line = f"{r.t_s:>3}  {r.applied[:34]:34}"
        for who in labels:
            o = r.observed[who]
            line += (f" | {who}: {_fmt(r.levels[who]):>3} {_fmt(o.fraction_lost, '.3f'):>5} "
                     f"{_fmt(o.rtt_ms, '.0f'):>5} {_fmt(o.available_kbps):>6} "
                     f"{_fmt(o.video_kbps):>5} {r.limited_by[who] or ''}").ljust(62)
        lines.append(line.rstrip())
    return "\n".join(lines)


def report_json(profile: Profile, rows: Sequence[Second], *, sids: Mapping[str, str],
                extra: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "profile": profile.as_json(),
        "participants": dict(sids),
        **extra,
        "timeline": [
            {"t": r.t_s, "applied": r.applied,
             "participants": {who: {"level": r.levels[who], "limitedBy": r.limited_by[who],
                                    "fractionLost": r.observed[who].fraction_lost,
                                    "rttMs": r.observed[who].rtt_ms,
                                    "availableOutgoingKbps": r.observed[who].available_kbps,
                                    "videoSendKbps": r.observed[who].video_kbps,
                                    "connectionState": r.observed[who].state}
                              for who in r.levels}}
            for r in rows],
    }


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def write_chart(path: Path, profile: Profile, rows: Sequence[Second], title: str) -> None:
    """Levels per participant above, send-side estimate and video rate below; impaired spans
    shaded. Matplotlib loads here: only a finished run draws."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    labels = list(rows[0].levels) if rows else []
    ts = [r.t_s for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.6), sharex=True, dpi=90,
                                      gridspec_kw={"height_ratios": [3, 2]})
    for step, nxt in zip(profile.steps, [*profile.steps[1:], None], strict=True):
        end = nxt.at_s if nxt is not None else profile.duration_s
        if step.links and any(not imp.clean for imp in step.links.values()):
            for ax in (top, bottom):
                ax.axvspan(step.at_s, end, color="tab:red", alpha=0.08, lw=0)
            top.text((step.at_s + end) / 2, 5.35, step.label, ha="center", fontsize=8,
                     color="tab:red")
    for i, who in enumerate(labels):
        levels = [r.levels[who] if r.levels[who] is not None else float("nan") for r in rows]
        top.step(ts, [v + (i - 0.5) * 0.06 for v in levels], where="post", lw=2,
                 label=f"{who} level")
        bottom.plot(ts, [r.observed[who].available_kbps for r in rows], lw=1,
                    label=f"{who} availableOutgoingBitrate")
        bottom.plot(ts, [r.observed[who].video_kbps for r in rows], lw=1, ls="--",
                    label=f"{who} video sent")
    top.set_ylim(-0.3, 5.8)
    top.set_yticks(range(6))
    top.set_ylabel("network quality level")
    top.legend(loc="lower left", fontsize=8)
    top.set_title(title, fontsize=10)
    sent = [r.observed[w].video_kbps or 0 for r in rows for w in labels]
    if sent and max(sent) > 0:
        bottom.set_ylim(0, 1.6 * max(sent))  # an idle estimate of 15 Mbit/s would flatten all
    bottom.set_ylabel("kbit/s")
    bottom.set_xlabel("seconds into the call")
    bottom.legend(loc="upper right", fontsize=7, ncol=2, framealpha=0.9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def rows_from_report(document: Mapping[str, Any]) -> list[Second]:
    """The timeline of a written ``report.json`` back as rows (for checks after a run)."""
    rows = []
    for entry in document["timeline"]:
        parts = entry["participants"]
        rows.append(Second(
            entry["t"], entry["applied"],
            {who: p["level"] for who, p in parts.items()},
            {who: p["limitedBy"] for who, p in parts.items()},
            {who: Observed(p["fractionLost"], p["rttMs"], p["availableOutgoingKbps"],
                           p["videoSendKbps"], p["connectionState"])
             for who, p in parts.items()},
        ))
    return rows
