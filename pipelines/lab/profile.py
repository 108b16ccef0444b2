"""What the lab applies when: named scenarios, JSON timelines and capacity traces.

A profile is a list of steps; each step, from its ``at`` second on, sets every link of the
call (participants ``A``, ``B``, ... each with an ``up`` and a ``down`` link). What a step
does not name is clean: a step is the whole network state, never a patch, so a timeline
reads as what the network was, second by second. JSON form::

    {"name": "uplink-loss", "duration_s": 50,
     "steps": [{"at": 0, "label": "clean"},
               {"at": 20, "label": "8% loss on A's uplink", "A": {"up": {"loss": 0.08}}}]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines.lab.impairment import CLEAN, Impairment, ImpairmentError

DIRECTIONS = ("up", "down")
RAMP_UP_S = 20
"""Clean seconds before any impairment: a 640x360 clip's send bitrate settles within ~15-20 s
here (issue 23 measured 320 -> 1280 px over ~35 s for a larger clip), and the scorer's
call-start grace should be over, so a change after it is the impairment's doing."""


class ProfileError(ValueError):
    """A profile that cannot be run; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Step:
    at_s: float
    label: str
    links: Mapping[tuple[str, str], Impairment] = field(default_factory=dict)
    """(participant label, "up" | "down") -> impairment; absent means clean."""

    def link(self, participant: str, direction: str) -> Impairment:
        return self.links.get((participant, direction), CLEAN)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at_s, "label": self.label}
        for (who, direction), imp in sorted(self.links.items()):
            if not imp.clean:
                out.setdefault(who, {})[direction] = imp.as_json()
        return out


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    duration_s: float
    steps: tuple[Step, ...]
    note: str = ""

    def at(self, t_s: float) -> Step:
        """The step in force at ``t_s`` seconds into the call."""
        current = self.steps[0]
        for step in self.steps:
            if step.at_s <= t_s:
                current = step
        return current

    def participants(self) -> set[str]:
        return {who for step in self.steps for who, _ in step.links}

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "duration_s": self.duration_s, "note": self.note,
                "steps": [s.as_json() for s in self.steps]}


def _step(at: float, label: str, **links: dict[str, Impairment]) -> Step:
    return Step(at, label, {(who, d): imp for who, dirs in links.items()
                            for d, imp in dirs.items()})


def _clean_then(name: str, label: str, duration: float, note: str, **links: Any) -> Profile:
    return Profile(name, duration, (_step(0, "clean (ramp-up)"), _step(RAMP_UP_S, label, **links)),
                   note)


SCENARIOS: dict[str, Profile] = {
    "clean": Profile("clean", 45, (_step(0, "clean"),), "no impairment at all"),
    "uplink-loss": _clean_then(
        "uplink-loss", "10% loss on A's uplink", 45,
        "A's uplink loses 10 % of packets from 20 s: A sends into loss, B receives it",
        A={"up": Impairment(loss=0.10)}),
    "downlink-loss": _clean_then(
        "downlink-loss", "10% loss on B's downlink", 45,
        "B's downlink loses 10 % from 20 s (in a two-party P2P call the same packets as A's "
        "uplink: only more parties could tell them apart)",
        B={"down": Impairment(loss=0.10)}),
    "delay": _clean_then(
        "delay", "+200 ms each way on A", 45,
        "A's uplink and downlink each add 200 ms (RTT +400 ms) with 10 ms jitter from 20 s",
        A={"up": Impairment(delay_ms=200, jitter_ms=10),
           "down": Impairment(delay_ms=200, jitter_ms=10)}),
    "rate-cap": _clean_then(
        "rate-cap", "A's uplink capped at 250 kbit/s", 45,
        "A's uplink capped at 250 kbit/s (200 ms drop-tail queue) from 20 s",
        A={"up": Impairment(rate_kbps=250)}),
    "outage": Profile("outage", 45, (
        _step(0, "clean (ramp-up)"),
        _step(RAMP_UP_S, "outage of A (both ways)", A={"up": Impairment(outage=True),
                                                        "down": Impairment(outage=True)}),
        _step(RAMP_UP_S + 10, "clean again"),
    ), "A's link carries nothing from 20 s to 30 s (ICE disconnects after ~5-6 s)"),
    "recovery": Profile("recovery", 60, (
        _step(0, "clean (ramp-up)"),
        _step(RAMP_UP_S, "15% loss on A's uplink", A={"up": Impairment(loss=0.15)}),
        _step(RAMP_UP_S + 12, "clean again"),
    ), "A's uplink loses 15 % from 20 s to 32 s, then clean until 60 s"),
}


def trace_profile(trace_name: str, duration_s: float = 60, scale: float = 1.0) -> Profile:
    """A shipped capacity trace (``pipelines/simulate/traces``) as A's uplink rate, 1 Hz."""
    from pipelines.simulate.traces import load_traces  # noqa: PLC0415 (reads files once)

    traces = load_traces()
    if trace_name not in traces:
        close = [n for n in sorted(traces) if trace_name.rsplit("/", 1)[-1] in n][:5]
        raise ProfileError(f"no trace {trace_name!r}" + (f"; did you mean {close}?" if close
                                                         else "; see pipelines/simulate/traces"))
    trace = traces[trace_name]
    steps = [_step(0, "clean (ramp-up)")]
    for second in range(RAMP_UP_S, int(duration_s)):
        kbps = round(trace.at(second - RAMP_UP_S) * scale / 1000.0)
        steps.append(_step(second, f"{kbps} kbit/s ({trace_name})",
                           A={"up": Impairment(rate_kbps=kbps)}))
    return Profile(f"trace-{trace_name.replace('/', '-')}", duration_s, tuple(steps),
                   f"A's uplink follows the capacity of {trace_name} from {RAMP_UP_S} s")


def profile_from_json(data: Any, where: str = "profile") -> Profile:
    if not isinstance(data, dict):
        raise ProfileError(f"{where}: expected a JSON object with name, duration_s and steps")
    steps_in = data.get("steps")
    if not isinstance(steps_in, list) or not steps_in:
        raise ProfileError(f"{where}: 'steps' must be a non-empty list")
    duration = data.get("duration_s")
    if not isinstance(duration, int | float) or isinstance(duration, bool) or duration <= 0:
        raise ProfileError(f"{where}: 'duration_s' must be a number of seconds > 0")
    steps: list[Step] = []
    for i, raw in enumerate(steps_in):
        here = f"{where}, step {i + 1}"
        if not isinstance(raw, dict):
            raise ProfileError(f"{here}: expected an object")
        at = raw.get("at", 0)
        if not isinstance(at, int | float) or isinstance(at, bool) or at < 0:
            raise ProfileError(f"{here}: 'at' must be seconds >= 0")
        if steps and at < steps[-1].at_s:
            raise ProfileError(f"{here}: steps must be in time order")
        links: dict[tuple[str, str], Impairment] = {}
        for who, dirs in raw.items():
            if who in ("at", "label"):
                continue
            if not isinstance(dirs, dict) or not set(dirs) <= set(DIRECTIONS):
                raise ProfileError(f"{here}: participant {who!r} takes 'up' and/or 'down'")
            for direction, imp in dirs.items():
                try:
                    links[(who, direction)] = Impairment.from_json(imp, f"{here} {who}.{direction}")
                except ImpairmentError as exc:
                    raise ProfileError(str(exc)) from None
        label = raw.get("label") or "; ".join(
            f"{w}.{d}: {imp.describe()}" for (w, d), imp in sorted(links.items())) or "clean"
        steps.append(Step(float(at), str(label), links))
    return Profile(str(data.get("name", where)), float(duration), tuple(steps),
                   str(data.get("note", "")))


def load_profile(spec: str, duration_s: float | None = None) -> Profile:
    """A scenario name, ``trace:<family/name>`` or a JSON file path."""
    if spec in SCENARIOS:
        profile = SCENARIOS[spec]
    elif spec.startswith("trace:"):
        profile = trace_profile(spec.removeprefix("trace:"), duration_s or 60)
    else:
        path = Path(spec)
        if not path.is_file():
            raise ProfileError(f"unknown profile {spec!r}: use one of {sorted(SCENARIOS)}, "
                               "trace:<family/name>, or a JSON file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProfileError(f"{path}: cannot read the profile ({exc})") from None
        profile = profile_from_json(data, str(path))
    if duration_s is not None:
        profile = Profile(profile.name, duration_s, profile.steps, profile.note)
    return profile
