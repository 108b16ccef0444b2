"""``netquality bench`` with tiny sizes: the JSON document and the Markdown table have their
shape (no timing assertions: figures on a shared CI machine mean nothing)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.harness.backlog import rss_window
from benchmarks.harness.inputs import envelopes
from benchmarks.harness.report import markdown, rows
from benchmarks.harness.run import run
from benchmarks.harness.sizes import SECTIONS, BenchSizes
from pipelines.contracts import decode_stats_message
from pipelines.streaming.levels import default_partition
from pipelines.testing import scripted_session

TINY = BenchSizes(
    engine_samples=600,
    engine_repeat=1,
    drain_samples=600,
    drain_participants=60,
    single_samples=120,
    partitions=4,
    timeout_s=90.0,
)


def test_envelopes_group_samples_by_partition_in_order() -> None:
    samples = scripted_session()
    messages = envelopes(samples, 4, per_envelope=5)
    seen = []
    for partition, key, value, count in messages:
        decoded = decode_stats_message(value)
        assert decoded.envelope and not decoded.rejected and len(decoded.samples) == count <= 5
        assert key == decoded.samples[0].participant_sid.encode()
        for s in decoded.samples:
            assert default_partition(s.participant_sid.encode(), 4) == partition
        seen.extend(decoded.samples)
    assert sorted(seen, key=samples.index) == samples
    for sid in {s.participant_sid for s in samples}:
        assert [s.seq for s in seen if s.participant_sid == sid] == sorted(
            s.seq for s in samples if s.participant_sid == sid
        )


def test_bench_engine_and_drain_sections_with_tiny_sizes(broker, tmp_path: Path) -> None:
    from pipelines.config import Settings

    settings = Settings.from_env().with_overrides(kafka_bootstrap_servers=broker)
    result = run(["engine", "drain"], TINY, tmp_path, progress=False, settings=settings)
    json.dumps(result)  # one JSON document
    assert result["benchmark"] == "netquality.bench"
    assert {"nproc", "cpu_model", "load_average_1m"} <= set(result["machine"])
    variant = result["engine"]["variant"]
    assert result["engine"]["steady"][variant]["batch_samples_per_s"] > 0
    for kind, samples in (("envelope", 600), ("single", 120)):
        drain = result["drain"][kind]
        assert drain["samples"] == samples
        assert drain["complete"] is True, drain
        assert drain["events_seen"] >= drain["events_expected"] > 0
        assert drain["samples_per_s"] > 0 and drain["baseline_aiokafka_samples_per_s"] > 0
        assert drain["ratio_to_baseline"] > 0
    assert result["drain"]["envelope"]["messages"] < 600
    table = Path(result["markdown"]).read_text()
    assert "drain, 1 worker (envelopes)" in table and f"engine batch (steady, {variant})" in table


def test_rss_window_takes_each_workers_median_so_one_transient_reading_does_not_move_it() -> None:
    mib = 2**20
    # Two workers read in turn; worker 0 has a 2-reading transient (a timer's pass) mid-window.
    readings = [[250 * mib, 100 * mib], [251 * mib, 101 * mib], [275 * mib, 100 * mib],
                [276 * mib, 99 * mib], [250 * mib, 100 * mib], [249 * mib, 102 * mib]]  # fmt: skip
    first, second = rss_window(readings)
    assert first == {"first": 250.0, "min": 249.0, "median": 250.5, "max": 276.0, "readings": 6}
    assert second["median"] == 100.0 and second["max"] == 102.0 and second["min"] == 99.0


def test_markdown_has_a_row_with_baseline_for_every_section() -> None:
    result = {
        "machine": {"nproc": 2, "cpu_model": "x", "python": "3.11", "load_average_1m": 1.0},
        "engine": {"steady": {"compiled": {"single_samples_per_s": 1, "batch_samples_per_s": 2,
                                           "baseline_json_decode_samples_per_s": 3,
                                           "batch_vs_baseline": 0.6}}},
        "drain": {"envelope": {"samples_per_s": 5, "baseline_aiokafka_samples_per_s": 10,
                               "ratio_to_baseline": 0.5}},
        "latency": {"offered_samples_per_s": 5000, "worker": {"p99_ms": 20.0},
                    "baseline_broker_round_trip": {"p99_ms": 10.0}},
        "sink": {"sink_rows_per_s": 1, "copy_rows_per_s": 2, "ratio": 0.5},
        "memory": {"participants": 10, "bytes_per_participant": 900, "idle_rss_mb": 90.0},
        "scale": {"workers_1": {"samples_per_s": 4}, "workers_2": {"samples_per_s": 7},
                  "ratio_2_to_1": 1.75},
    }  # fmt: skip
    figures = [r[0] for r in rows(result)]
    for word in ("engine", "drain", "latency p99", "sink", "memory", "2 workers"):
        assert any(word in f for f in figures), word
    assert all(r[3] is not None for r in rows(result) if r[1] is not None)
    assert set(SECTIONS) == {"engine", "drain", "latency", "sink", "memory", "scale"}
    assert markdown(result).count("\n|") >= len(figures) + 1
