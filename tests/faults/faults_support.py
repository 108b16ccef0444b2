"""Helpers of the fault suite: scale, figures, processes (a module, so tests can import it)."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.runtime.process import ManagedProcess
from pipelines.testing import Conditions, ScriptedParticipant


def _load_integration_fixtures() -> Any:
    """tests/integration/conftest.py as a module: one definition of the shared fixtures."""
    spec = importlib.util.spec_from_file_location(
        "nq_integration_fixtures", Path(__file__).parents[1] / "integration" / "conftest.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


INTEGRATION = _load_integration_fixtures()
query = INTEGRATION.query
wait_for = INTEGRATION.wait_for

FULL = os.environ.get("NETQUALITY_FAULTS_SCALE", "ci") == "full"
FIGURES_DIR = Path(os.environ.get("NETQUALITY_FAULTS_DIR", "var/faults"))


def scale(ci: int, full: int) -> int:
    """The CI-sized or the full-sized figure."""
    return full if FULL else ci


def record_figures(name: str, figures: dict[str, Any]) -> Path:
    """Write a test's figures as JSON for docs/reliability.md (never overwritten by CI-size
    runs of a full-size result: CI-size files get a ``-ci`` suffix)."""
    FIGURES_DIR.mkdir(parents=True, exist_ok=True)
    path = FIGURES_DIR / f"{name}{'' if FULL else '-ci'}.json"
    body = {"test": name, "scale": "full" if FULL else "ci", "finished_at": time.time(), **figures}
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
    with path.with_suffix(".runs.jsonl").open("a") as runs:  # every run, passing ones
        runs.write(json.dumps(body, sort_keys=True) + "\n")
    return path


def start_process(command: str, settings: Settings, log_dir: Path, name: str) -> ManagedProcess:
    """``netquality <command>`` as a child process with these settings in its environment."""
    env = {**os.environ, **settings.as_env()}
    proc = ManagedProcess(
        name,
        [sys.executable, "-m", "pipelines.cli", command],
        log_path=log_dir / f"{name}.log",
        env=env,
    )
    proc.start()
    return proc


def shifting_load(participants: int, steps: int, seed: int) -> list:
    """Samples of ``participants`` over ``steps`` seconds with shifting loss and RTT."""
    rng = random.Random(seed)
    people = [
        ScriptedParticipant(
            f"PK{i:04d}", room_sid=f"RK{i % 7}", publish_video=i % 3 != 0, subscribe_audio=i % 2
        )
        for i in range(participants)
    ]
    bad = {i: rng.random() < 0.6 for i in range(participants)}
    out = []
    for t in range(steps):
        for i, p in enumerate(people):
            trouble = bad[i] and (t // 6) % 2 == 1
            out.append(
                p.step(Conditions(loss=0.12 if trouble else 0.0, rtt=0.4 if trouble else 0.04))
            )
    return out
