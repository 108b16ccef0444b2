"""Helpers of the fault suite: scale, figures, processes (a module, so tests can import it)."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

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


def with_partitions(settings: Settings, partitions: int) -> Settings:
    """``settings`` on fresh topics of ``partitions`` partitions each (the integration
    fixture creates its topics with 4), created before any worker starts."""
    from pipelines.streaming.topics import ensure_topics

    names = ("topic_stats", "topic_levels", "topic_levels_current", "topic_rollups",
             "topic_alerts", "topic_deadletter")  # fmt: skip
    renamed = {name: f"p{partitions}-{getattr(settings, name)}" for name in names}
    resized = settings.with_overrides(partitions=partitions, **renamed)
    ensure_topics(resized)
    return resized


def last_assignment(log: str, topic: str) -> set[int] | None:
    """Partitions of ``topic`` in the last assignment a worker logged (the consumer's
    "Setting newly assigned partitions" table); None if it logged no assignment."""
    tables = log.split("Setting newly assigned partitions")
    if len(tables) < 2:
        return None
    table = tables[-1].split(" for group ", 1)[0]
    found = re.search(rf"^\|\s*{re.escape(topic)}\s*\|\s*\{{([^}}]*)\}}\s*\|", table, re.M)
    partitions: set[int] = set()
    for part in found[1].split(",") if found else []:
        first, _, last = part.strip().partition("-")
        partitions.update(range(int(first), int(last or first) + 1))
    return partitions


def published_as_offline(kafka_io: Any, topic: str, expected: dict[str, dict], what: str) -> list:
    """The level events on ``topic`` once all ``expected`` ones (by event id, as builtins) are
    there; fails unless each is an exact copy of an expected one (replays may repeat an event,
    with its id) and none is missing. ``what`` names the faults for the failure message."""
    from pipelines.contracts import decode_level

    records = kafka_io.read(
        topic, until=lambda r: len({x.value for x in r}) >= len(expected), timeout=240
    )
    events = [msgspec.to_builtins(decode_level(r.value)) for r in records]
    missing = sorted(expected.keys() - {e["eventId"] for e in events})
    assert not missing, (
        f"{len(missing)} of {len(expected)} level changes never published after {what}: "
        f"{missing[:20]}"
    )
    unexpected = [e for e in events if e["eventId"] not in expected]
    assert not unexpected, (
        f"{len(unexpected)} events the offline run does not have, after {what}: {unexpected[:5]}"
    )
    for event in events:
        assert event == expected[event["eventId"]], f"{event['eventId']} differs after {what}"
    return events


def stored_as_offline(url: str, reference: list) -> None:
    """Postgres holds one ``level_changes`` row per event of the offline ``reference`` (no
    duplicate, same fields), and ``current_levels`` each participant's last event."""
    wait_for(
        lambda: query(url, "SELECT count(DISTINCT event_id) FROM level_changes")[0][0]
        >= len(reference),
        timeout=240,
        what="all level changes in Postgres",
    )
    rows = query(url, "SELECT event_id, participant_sid, room_sid, level, previous_level"
                      " FROM level_changes")  # fmt: skip
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicate rows"
    assert {r[0]: r[1:] for r in rows} == {
        e.event_id: (e.participant_sid, e.room_sid, e.level, e.previous_level) for e in reference
    }
    last = {e.participant_sid: e for e in reference}
    current = query(url, "SELECT participant_sid, level, event_id FROM current_levels")
    assert {r[0]: r[1:] for r in current} == {s: (e.level, e.event_id) for s, e in last.items()}
