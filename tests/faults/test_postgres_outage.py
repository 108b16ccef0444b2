"""Postgres stopped for 20 s during a load: nothing is lost, the sink catches up, lag -> 0.

The test starts its own embedded Postgres (stopping the session's would disturb other tests),
a real worker and a real ``netquality sink`` process. Lag here is black-box: level-change
events in Kafka that are not yet rows in Postgres.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from faults_support import query, record_figures, scale, shifting_load, start_process, wait_for
from test_process_kills import Producer

from pipelines.contracts import decode_level
from pipelines.quality import Engine, load_thresholds
from pipelines.runtime.postgres import EmbeddedPostgres
from pipelines.storage import migrate

OUTAGE_S = 20.0


def test_postgres_down_for_20_s_loses_nothing_and_lag_returns_to_zero(
    worker_settings, kafka_io, unique_id, no_staleness, tmp_path
):
    participants, steps, load_s = scale(30, 150), scale(50, 120), scale(45, 120)
    samples = shifting_load(participants, steps, seed=7)
    expected = {e.event_id for e in Engine(load_thresholds(no_staleness)).feed_batch(samples)}
    # Outside pytest's basetemp: a parallel pytest session re-chmods /tmp/pytest-of-<user> to
    # 0700, and the unprivileged Postgres user must still reach its data on restart.
    home = Path(tempfile.mkdtemp(prefix="nq-faults-pg-"))
    home.chmod(0o711)
    with EmbeddedPostgres(home / "data", home) as pg:
        migrate.upgrade(pg.url)
        settings = worker_settings.with_overrides(
            thresholds_file=no_staleness,
            participant_ttl_s=7200.0,
            database_url=pg.url,
            sink_group=f"sink-{unique_id[-10:]}",
        )
        url = pg.url
        rows = lambda: query(url, "SELECT count(*) FROM level_changes")[0][0]  # noqa: E731
        worker = start_process("worker", settings, tmp_path, "worker")
        sink = start_process("sink", settings, tmp_path, "sink")
        try:
            producer = Producer(kafka_io, settings.topic_stats, samples, duration=load_s)
            producer.start()
            wait_for(lambda: rows() > 0, 180, "first rows")
            before_outage = rows()
            pg.stop()
            down_at = time.monotonic()
            time.sleep(OUTAGE_S)
            pg.start()
            outage = time.monotonic() - down_at
            producer.join(timeout=600)
            assert producer.error is None, producer.error
            wait_for(lambda: rows() >= len(expected), 300, "the sink to catch up")
            caught_up_after = time.monotonic() - down_at - outage
            in_kafka = {
                decode_level(r.value).event_id
                for r in kafka_io.read(
                    settings.topic_levels, until=lambda r: len(r) >= len(expected), timeout=60
                )
            }
            ids = [r[0] for r in query(url, "SELECT event_id FROM level_changes")]
            assert len(ids) == len(set(ids)), "duplicate rows"
            assert set(ids) == expected == in_kafka
            lag = len(in_kafka - set(ids))
            assert lag == 0
            assert sink.alive and worker.alive, sink.log_tail()
        finally:
            sink.stop(timeout=30)
            worker.stop(timeout=30)
    shutil.rmtree(home, ignore_errors=True)
    record_figures(
        "postgres_outage",
        {
            "participants": participants,
            "samples": len(samples),
            "load_seconds": load_s,
            "outage_s": round(outage, 1),
            "rows_before_outage": before_outage,
            "expected_events": len(expected),
            "rows": len(ids),
            "last_row_after_restart_s": round(caught_up_after, 1),
            "final_lag": lag,
            "rows_lost": 0,
            "duplicate_rows": 0,
        },
    )
