"""When a scope counts as degraded and how its alert opens and resolves: the rules, their
defaults with the reasons for each, and how overrides are read."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec


class AlertRule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """When one kind of scope counts as degraded, and how its alert opens and resolves."""

    at_or_below: int
    """A participant counts as degraded at this level or lower."""
    min_share: float
    """Share of the scope's participants that must be degraded (0..1)."""
    min_degraded: int
    """And at least this many of them (a share of a tiny room says little)."""
    sustain_s: float
    """The condition must hold this long before the alert opens."""
    resolve_after_s: float
    """The condition must stay false this long before the alert resolves."""
    reopen_cooldown_s: float
    """After a resolution, no new alert for the same scope opens before this."""


ROOM_RULE = AlertRule(
    at_or_below=2, min_share=0.5, min_degraded=2,
    sustain_s=15.0, resolve_after_s=20.0, reopen_cooldown_s=60.0,
)  # fmt: skip
"""Room degraded: half the room (and at least two people) at level <= 2 ("bad" or worse).

* level <= 2: LiveKit and Twilio both call 2 "poor/bad"; users notice frozen video or robotic
  audio there, whereas 3 is merely "average".
* >= 50 %: one bad participant is that participant's problem (their own stuck alert covers it);
  when half the room suffers, the call as a whole is degraded and a room service should act.
* >= 2: in a two-person room one bad link already degrades the call for both, but a single
  participant alone in a room is not a room problem.
* 15 s: levels are already smoothed (worse news fast, better news held), so 15 s is long enough
  to skip a transient dip (a Wi-Fi roam, a key frame burst) yet far shorter than a user's
  patience before leaving a call (~30-60 s).
* 20 s to resolve: longer than the levels' upgrade dwell plus a smoothing window, so one good
  reading does not close it; a demo incident of ~40 s still opens and resolves within 2 minutes.
* 60 s cool-down: a room that flaps faster than that stays one alert, not a page per flap.
"""

REGION_RULE = AlertRule(
    at_or_below=2, min_share=0.25, min_degraded=10,
    sustain_s=30.0, resolve_after_s=60.0, reopen_cooldown_s=300.0,
)  # fmt: skip
"""Region degraded: a quarter of a region's participants (and at least ten) at level <= 2.

A region holds many independent networks; a quarter of them bad at once points at shared
infrastructure (a media server, a peering link), not at users' Wi-Fi. Ten participants keep a
quiet region's three unlucky users from paging anyone. 30 s / 60 s / 5 min are slower than the
room rule because regional incidents are slower and paging an on-call engineer is expensive.
"""

PARTICIPANT_RULE = AlertRule(
    at_or_below=1, min_share=1.0, min_degraded=1,
    sustain_s=30.0, resolve_after_s=20.0, reopen_cooldown_s=120.0,
)  # fmt: skip
"""Participant stuck: one participant at level <= 1 ("very bad" or broken) for 30 s.

Level 1 means the call is barely usable for them; 30 s rules out reconnect blips (level 0 for a
few seconds during an ICE restart) while still telling support before the user gives up.
"""


class AlertRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """All alert rules; :func:`load_alert_rules` reads overrides from a file and environment."""

    room: AlertRule = ROOM_RULE
    region: AlertRule = REGION_RULE
    participant: AlertRule = PARTICIPANT_RULE
    update_interval_s: float = 10.0
    """Open alerts are updated at most this often: enough for a dashboard, not a flood."""
    update_share_delta: float = 0.1
    """A change of the degraded share by 10 points is news; one person more or less in a large
    room is not."""
    worst_count: int = 5
    """Worst participants named per alert: enough to act on, small enough to read."""
    allowed_lateness_s: float = 5.0
    """A room's events are applied in time order this long after they happen: a room's
    participants sit in different partitions, and producer batching plus the re-keying hop
    reorder them by up to a few seconds (the rollups allow the same). Alerts are late by as
    much, which is small against the 15 s sustain."""

    def __post_init__(self) -> None:
        for name in ("room", "region", "participant"):
            rule: AlertRule = getattr(self, name)
            if not 0 <= rule.at_or_below <= 5:
                raise ValueError(f"alert rule {name}.at_or_below must be a level 0..5")
            if not 0.0 < rule.min_share <= 1.0 or rule.min_degraded < 1:
                raise ValueError(f"alert rule {name}: min_share in (0, 1], min_degraded >= 1")
            if min(rule.sustain_s, rule.resolve_after_s, rule.reopen_cooldown_s) < 0:
                raise ValueError(f"alert rule {name}: durations must be >= 0 s")
        if not 1 <= self.worst_count <= 20:
            raise ValueError("alert rules: worst_count must be 1..20 (the contract's maximum)")


def load_alert_rules(
    path: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> AlertRules:
    """Defaults, then a JSON file of partial overrides, then single-field overrides.

    The file looks like ``{"room": {"sustain_s": 10}, "worst_count": 3}``; ``overrides`` maps
    ``"room.sustain_s"`` style names to values (the settings' environment overrides).
    Unknown names are errors, so a typo never silently leaves a default in force.
    """
    data: dict[str, Any] = msgspec.to_builtins(AlertRules())
    if path is not None:
        try:
            extra = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read alert rules file {path}: {exc}") from exc
        if not isinstance(extra, dict):
            raise ValueError(f"alert rules file {path} must hold a JSON object")
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key].update(value)
            else:
                data[key] = value
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        scope, _, field = name.partition(".")
        if field:
            data.setdefault(scope, {})[field] = value
        else:
            data[scope] = value
    try:
        return msgspec.convert(data, AlertRules)
    except msgspec.ValidationError as exc:
        raise ValueError(f"invalid alert rules: {exc}") from exc


def max_opens(window_ms: int, rule: AlertRule) -> int:
    """Upper bound on alerts one scope can open within ``window_ms`` under ``rule``."""
    cycle = int(rule.resolve_after_s * 1000) + int(rule.reopen_cooldown_s * 1000)
    return 1 + (math.ceil(window_ms / cycle) if cycle else window_ms)
