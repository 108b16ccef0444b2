"""Fault-suite fixtures: the integration fixtures (real broker, Postgres, workers) plus scale.

``NETQUALITY_FAULTS_SCALE=full`` (what ``make faults`` sets) runs the full-size loads that
docs/reliability.md quotes; unset, the suite runs CI-sized inside ``make test``. Each test
writes its figures to ``var/faults/<name>.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

_spec = importlib.util.spec_from_file_location(
    "nq_integration_fixtures", Path(__file__).parents[1] / "integration" / "conftest.py"
)
assert _spec and _spec.loader
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)
for _name in ("kafka_io", "worker_settings", "no_staleness", "start_worker", "make_db", "db",
              "migrated", "sink_settings", "db_query", "wait_until", "row_count"):  # fmt: skip
    globals()[_name] = getattr(_integration, _name)
KafkaIO = _integration.KafkaIO
query = _integration.query
wait_for = _integration.wait_for

FULL = os.environ.get("NETQUALITY_FAULTS_SCALE", "ci") == "full"
FIGURES_DIR = Path(os.environ.get("NETQUALITY_FAULTS_DIR", "var/faults"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "faults" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.faults)


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
    return path
