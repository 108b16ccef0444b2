"""Analysts' reads: ADBC (columnar) against psycopg row fetching, on the same queries.

Run ``python benchmarks/analytics.py [--rooms 200] [--minutes 1440] [--repeat 5]``: prints one
JSON document (progress on stderr). ``run()`` returns the same dict.

Against one Postgres (an embedded one started through ``Runtime`` in a temporary state dir,
unless ``DATABASE_URL`` is set), in a fresh database migrated to head and dropped at the end:

1. ``room_rollups`` gets ``rooms x minutes`` synthetic rows (a day of 200 busy rooms by
   default: 288,000 rows), ``region_rollups`` the matching region minutes (4 regions);
2. each query runs ``repeat`` times per driver, alternating drivers, on one open connection
   each (connecting is not measured); the figure is the median wall time until the polars
   DataFrame exists, dtypes cast as the API does:

   - ``minutes``: ``QualityHistory.rollup_minutes(scope="room")``, every room minute of the
     day (13 columns): the large result a notebook pulls to work on minutes itself;
   - ``hourly_by_room``: ``QualityHistory.time_at_level(scope="room", bucket="hour")``:
     Postgres aggregates, a few thousand rows come back;
   - ``limiting_metrics``: the step-function query over ``level_changes`` (empty here, so
     this is the fixed cost of a small query).

``speedup`` is rows time / ADBC time (above 1: ADBC is faster). Compare ratios across
machines, not raw times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script from a checkout: make `pipelines` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import polars as pl
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from pipelines.analytics import QualityHistory
from pipelines.config import Settings
from pipelines.runtime import Runtime, libpq_url
from pipelines.storage import migrate
from pipelines.storage.rows import REGION_ROLLUP_COLUMNS, ROOM_ROLLUP_COLUMNS

DAY = datetime(2026, 11, 2, tzinfo=UTC)
REGIONS = ("eu-west", "us-east", "ap-south", "sa-east")
def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _seconds(rng: random.Random, participants: int) -> list[float]:
    """60 s per participant spread over the levels, mostly 4-5 with some trouble."""
    weights = [rng.random() * w for w in (0.02, 0.03, 0.05, 0.1, 0.3, 1.0)]
    total = sum(weights)
    return [round(60 * participants * w / total, 3) for w in weights]


def seed(url: str, rooms: int, minutes: int, seed_value: int) -> int:
    """Fill the rollup tables; return the number of room minutes written."""
    rng = random.Random(seed_value)
    region_sums: dict[tuple[str, datetime], list[float]] = {}
    with psycopg.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY room_rollups ({', '.join(ROOM_ROLLUP_COLUMNS)}) FROM STDIN") as cp:
            for room in range(rooms):
                region = REGIONS[room % len(REGIONS)]
                for m in range(minutes):
                    minute = DAY + timedelta(minutes=m)
                    people = rng.randint(2, 12)
                    secs = _seconds(rng, people)
                    total = sum(secs)
                    avg = sum(level * s for level, s in enumerate(secs)) / total
                    cp.write_row((f"RM{room:05d}", minute, region, *secs, people, 0, avg,
                                  rng.randint(0, 5)))
                    acc = region_sums.setdefault((region, minute), [0.0] * 8)
                    for i, s in enumerate(secs):
                        acc[i] += s
                    acc[6] += people
        with cur.copy(
            f"COPY region_rollups ({', '.join(REGION_ROLLUP_COLUMNS)}) FROM STDIN"
        ) as cp:
            for (region, minute), acc in region_sums.items():
                total = sum(acc[:6])
                avg = sum(level * s for level, s in enumerate(acc[:6])) / total
                cp.write_row((region, minute, *acc[:6], int(acc[6]), 0, avg, 0))
        cur.execute("ANALYZE room_rollups")
        cur.execute("ANALYZE region_rollups")
    return rooms * minutes


def _time(call: Callable[[], pl.DataFrame]) -> tuple[float, int]:
    began = time.perf_counter()
    frame = call()
    return time.perf_counter() - began, frame.height


def measure(url: str, repeat: int) -> dict[str, Any]:
    end = DAY + timedelta(days=1)
    queries: dict[str, Callable[[QualityHistory], pl.DataFrame]] = {
        "minutes": lambda h: h.rollup_minutes(DAY, end, scope="room"),
        "hourly_by_room": lambda h: h.time_at_level(DAY, end, scope="room", bucket="hour"),
        "limiting_metrics": lambda h: h.limiting_metrics(DAY, end),
    }
    out: dict[str, Any] = {}
    with QualityHistory(url, driver="adbc") as adbc, QualityHistory(url, driver="rows") as rows:
        for name, query in queries.items():
            query(adbc), query(rows)  # warm the connections and Postgres' caches
            times: dict[str, list[float]] = {"adbc": [], "rows": []}
            result_rows = 0
            for _ in range(repeat):
                for driver, history in (("adbc", adbc), ("rows", rows)):
                    seconds, result_rows = _time(lambda h=history, q=query: q(h))
                    times[driver].append(seconds)
            adbc_s = statistics.median(times["adbc"])
            rows_s = statistics.median(times["rows"])
            out[name] = {
                "result_rows": result_rows,
                "adbc_s": round(adbc_s, 4),
                "rows_s": round(rows_s, 4),
                "adbc_rows_per_s": round(result_rows / adbc_s) if adbc_s else None,
                "rows_rows_per_s": round(result_rows / rows_s) if rows_s else None,
                "speedup": round(rows_s / adbc_s, 2) if adbc_s else None,
            }
            _log(f"{name}: {out[name]}")
    return out


def run(rooms: int = 200, minutes: int = 1440, repeat: int = 5, seed_value: int = 1) -> dict:
    """Seed a fresh database, measure both drivers, drop the database; the result as a dict."""
    began = time.monotonic()
    settings = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="nq-bench-analytics-") as state, Runtime(
        settings.with_overrides(state_dir=Path(state)), kafka=False
    ) as runtime:
        server = runtime.settings.database_url
        assert server
        name = f"nq_bench_{uuid.uuid4().hex[:10]}"
        admin = libpq_url(server)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        url = make_url(server).set(database=name).render_as_string(False)
        try:
            migrate.upgrade(url)
            _log(f"seeding {rooms} rooms x {minutes} minutes")
            seeded = seed(url, rooms, minutes, seed_value)
            results = measure(url, repeat)
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(name)
                    )
                )
    return {
        "benchmark": "analytics_reads",
        "room_minutes": seeded,
        "repeat": repeat,
        "queries": results,
        "baseline": "psycopg row fetching (fetchall) into pl.DataFrame(orient='row'), same SQL",
        "python": platform.python_version(),
        "polars": pl.__version__,
        "cpus": os.cpu_count(),
        "elapsed_s": round(time.monotonic() - began, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--minutes", type=int, default=1440)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run(args.rooms, args.minutes, args.repeat, args.seed), indent=2))


if __name__ == "__main__":
    main()
