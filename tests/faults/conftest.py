"""Fault-suite fixtures: the integration fixtures (real broker, Postgres, workers), re-exported.

``NETQUALITY_FAULTS_SCALE=full`` (what ``make faults`` sets) runs the full-size loads that
docs/reliability.md quotes; unset, the suite runs CI-sized inside ``make test``. Helpers live
in ``faults_support.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from faults_support import INTEGRATION

for _name in ("kafka_io", "worker_settings", "no_staleness", "start_worker", "make_db", "db",
              "migrated", "sink_settings", "db_query", "wait_until", "row_count"):  # fmt: skip
    globals()[_name] = getattr(INTEGRATION, _name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "faults" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.faults)
