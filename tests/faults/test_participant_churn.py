"""Participant churn: many ids pass through; state expiry keeps the worker's memory bounded.

Each participant sends a few samples and leaves. With ``NETQUALITY_PARTICIPANT_TTL_S`` short,
the worker expires departed participants (a final ``departed`` event) and drops their state,
so its resident memory (``VmRSS`` in /proc/<pid>/status) levels off instead of growing with
the number of ids ever seen, and the keys it holds per participant (its ``netquality_worker_keys``
gauge: stored states, decoded states) go back to zero.

Event time runs ``EVENT_TIME_SPEEDUP`` times faster than the wall clock: each wave's clients
start that much later. The rollups keep a departed participant's steps for the minutes that
can still be corrected (~3 minutes of event time, by design), so memory is bounded by the id
rate times that window; compressed, the window passes early in the run and the test sees the
plateau. (With every client on the same clock, as this test had it before, no minute ever
closed and the rollups held every id: ~470 bytes each.)
"""

from __future__ import annotations

import re
import socket
import time
import urllib.request
from pathlib import Path

from faults_support import record_figures, scale, start_process, wait_for
from test_process_kills import topic_end

from pipelines.contracts import encode
from pipelines.testing import ScriptedParticipant

TTL_S = 5.0
SAMPLES_EACH = 2
EVENT_TIME_SPEEDUP = 10


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def worker_keys(port: int) -> dict[str, float]:
    """The worker's ``netquality_worker_keys`` gauge by structure (empty if not served yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    pattern = r'^netquality_worker_keys\{structure="(\w+)"\} (\S+)$'
    return {m[1]: float(m[2]) for m in re.finditer(pattern, text, re.MULTILINE)}


def test_churn_of_participant_ids_keeps_worker_memory_bounded(
    worker_settings, kafka_io, tmp_path
):
    ids, duration = scale(5_000, 50_000), scale(20.0, 200.0)
    port = free_port()
    # Event time runs ahead of the stream on purpose here: let the room stages take it.
    settings = worker_settings.with_overrides(participant_ttl_s=TTL_S, metrics_port=port,
                                              event_time_ahead_s=7200.0)  # fmt: skip
    worker = start_process("worker", settings, tmp_path, "worker")
    waves = int(duration)
    per_wave = ids // waves
    rss: list[tuple[int, float]] = []
    try:
        wait_for(lambda: worker.alive and topic_end(settings.kafka_bootstrap_servers,
                 settings.topic_levels) >= 0, 30, "worker")  # fmt: skip
        # Clients on one clock, the warm-up one too: a participant present at an event time
        # a year before the others would make the rollups close every minute in between.
        event_time = int(time.time() * 1000)
        warm = [ScriptedParticipant("PW-warm", start_ms=event_time)]
        kafka_io.produce(settings.topic_stats, [(b"PW-warm", encode(warm[0].step()))])
        wait_for(lambda: topic_end(settings.kafka_bootstrap_servers, settings.topic_levels) > 0,
                 180, "worker ready")  # fmt: skip
        started = time.monotonic()
        peak_keys: dict[str, float] = {}
        for wave in range(waves):
            people = [
                ScriptedParticipant(
                    f"PC{wave:05d}-{i:05d}",
                    room_sid=f"RC{wave % 50}",
                    start_ms=event_time + wave * 1000 * EVENT_TIME_SPEEDUP,
                )
                for i in range(per_wave)
            ]
            records = []
            for _ in range(SAMPLES_EACH):
                records += [(p.participant_sid.encode(), encode(p.step())) for p in people]
            kafka_io.produce(settings.topic_stats, records)
            assert worker.alive and worker.pid, worker.log_tail()
            rss.append((wave, rss_mb(worker.pid)))
            if wave % 5 == 0:
                for name, value in worker_keys(port).items():
                    peak_keys[name] = max(value, peak_keys.get(name, 0.0))
            time.sleep(max(0.0, started + wave + 1 - time.monotonic()))
        # Let the last waves expire too.
        expected_departures = per_wave * waves
        levels = settings.topic_levels

        time.sleep(TTL_S * 4)  # staleness (10 s) then the TTL: the last waves expire too
        rss.append((waves, rss_mb(worker.pid)))
        records = kafka_io.read(
            levels,
            until=lambda r: sum(b'"departed":true' in x.value for x in r) >= expected_departures,
            timeout=scale(240, 900),
        )
        departures = sum(b'"departed":true' in x.value for x in records if x.key != b"PW-warm")
        # Everyone left, the warm-up participant too: nothing per participant stays behind
        # (the gauge is set every 2 s, after each sweep).
        keys: dict[str, float] = {}

        def emptied() -> bool:
            keys.update(worker_keys(port))
            return bool(keys) and max(keys.values()) == 0

        try:
            wait_for(emptied, 60, "the worker to hold no participant keys")
        except AssertionError:
            raise AssertionError(f"keys held after every participant left: {keys}") from None
    finally:
        worker.stop(timeout=60)
    quarter = [m for w, m in rss if w >= waves // 4]
    growth = max(quarter) - quarter[0]
    half = len(rss) // 2
    first_half = max(m for _, m in rss[:half]) - rss[0][1]
    second_half = max(m for _, m in rss[half:]) - max(m for _, m in rss[:half])
    bounded = second_half <= max(16.0, 0.5 * first_half)
    record_figures(
        "participant_churn",
        {
            "participant_ids": per_wave * waves,
            "samples": per_wave * waves * SAMPLES_EACH,
            "seconds": round(time.monotonic() - started, 1),
            "ttl_s": TTL_S,
            "departures": departures,
            "rss_mb_first": round(rss[0][1], 1),
            "rss_mb_after_first_quarter": round(quarter[0], 1),
            "rss_mb_max": round(max(m for _, m in rss), 1),
            "rss_mb_end": round(rss[-1][1], 1),
            "rss_growth_after_first_quarter_mb": round(growth, 1),
            "rss_growth_first_half_mb": round(first_half, 1),
            "rss_growth_second_half_mb": round(second_half, 1),
            "rss_mb_series": [round(m, 1) for _, m in rss[:: max(1, len(rss) // 20)]],
            "memory_bounded": bounded,
            "event_time_speedup": EVENT_TIME_SPEEDUP,
            "worker_keys_peak": peak_keys,
            "worker_keys_end": keys,
        },
    )
    # State expiry itself: every participant that passed through departed (state dropped).
    assert departures >= 0.99 * expected_departures, (departures, expected_departures)
    # Without expiry, state grows with every id, as much in the second half as in the first;
    # with it, the second half should add at most allocator noise.
    assert bounded, rss
