"""Draw the level timeline of a few canonical scenarios (docs/levels.md's chart).

Each panel runs one scripted participant through the real engine and plots its overall level
second by second, with the impairment that was applied shaded behind it. Usage:
``python tools/level_timelines.py [OUT.png]`` (default ``docs/images/level-timelines.png``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pipelines.quality import Engine
from pipelines.testing import Conditions, ScriptedParticipant

CLEAN = Conditions()


@dataclass(frozen=True)
class Panel:
    title: str
    participant: ScriptedParticipant
    script: list[Conditions]
    trouble: tuple[int, int]
    """Seconds [from, to) during which the impairment was applied (shaded)."""
    between: Callable[[int, ScriptedParticipant], None] | None = None
    """Changes the participant itself before second i (a camera that stops)."""


def _camera_off(start: int, end: int) -> Callable[[int, ScriptedParticipant], None]:
    def change(i: int, p: ScriptedParticipant) -> None:
        p.video_stopped = start <= i < end

    return change


def panels() -> list[Panel]:
    def video() -> ScriptedParticipant:
        return ScriptedParticipant("PA", publish_video=True, subscribe_audio=1)

    ramp = [Conditions(uplink=min(300_000 * 1.08**i, 4e6)) for i in range(50)]
    return [
        Panel("12 % loss for 10 s (video)", video(),
              [CLEAN] * 10 + [Conditions(loss=0.12)] * 10 + [CLEAN] * 30, (10, 20)),
        Panel("uplink 1.5 Mbit/s -> 150 kbit/s for 10 s", video(),
              [CLEAN] * 10 + [Conditions(uplink=150_000)] * 10 + [CLEAN] * 30, (10, 20)),
        Panel("2 % loss + RTT 400 ms + jitter 30 ms (audio)",
              ScriptedParticipant("PA", subscribe_audio=1),
              [CLEAN] * 10 + [Conditions(loss=0.02, rtt=0.4, jitter=0.03)] * 20 + [CLEAN] * 20,
              (10, 30)),
        Panel("call start: estimate ramps 300 kbit/s -> 2.5 Mbit/s (720p)",
              ScriptedParticipant("PA", publish_video=True, video_bitrate=2_500_000), ramp,
              (0, 30)),
        Panel("camera delivers nothing for 10 s (published, unmuted; audio flows)", video(),
              [CLEAN] * 50, (10, 20), between=_camera_off(10, 20)),
        Panel("5 s of 12 % loss, 5 s clean, repeated", video(),
              [Conditions(loss=0.12 if (i // 5) % 2 else 0.0) for i in range(50)], (5, 50)),
    ]  # fmt: skip


def timeline(panel: Panel) -> list[int]:
    engine = Engine()
    levels = []
    for i, c in enumerate(panel.script):
        if panel.between is not None:
            panel.between(i, panel.participant)
        engine.feed(panel.participant.step(c))
        levels.append(engine.states[panel.participant.participant_sid].level)
    return levels


def draw(out: Path) -> Path:
    chosen = panels()
    fig, axes = plt.subplots(len(chosen), 1, figsize=(9, 2.0 * len(chosen)), sharex=True)
    for ax, panel in zip(axes, chosen, strict=True):
        levels = timeline(panel)
        ax.axvspan(*panel.trouble, color="#f4c7c3", label="impairment applied")
        ax.step(range(len(levels)), levels, where="post", color="#1a73e8", linewidth=2)
        ax.set_ylim(-0.3, 5.4)
        ax.set_yticks(range(6))
        ax.set_ylabel("level")
        ax.set_title(panel.title, fontsize=10, loc="left")
        ax.grid(axis="y", alpha=0.3)
    axes[-1].set_xlabel("seconds (one stats sample per second)")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images/level-timelines.png")
    print(draw(target))
