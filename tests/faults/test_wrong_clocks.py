"""Clients with wrong clocks during live traffic: rollups stay bounded, no alert in the past.

The issue this guards (issue 24): during a live demo, the README's own example (13 samples of
``pipelines/demo_data/rtcstats/chrome-relay``, recorded in 2023) published with
``netquality publish --format rtcstats`` made the rollups stage close every minute between
2023 and now (``room rollups rows 1038371``), open alerts in 2023 and leave room and region
totals disagreeing. Here a real worker and a real sink take a few minutes of live traffic (two
rooms, one of them degraded) and, published in the middle of it, that dump plus two degraded
rooms whose clients' clocks read 2023 and two hours ahead. The Postgres rows must show:

* rollup rows only for the live rooms and the minutes of the live traffic (bounded);
* alerts only for the live rooms, none opened before the live traffic started or after now;
* region totals equal to the sum of their rooms, minute by minute;
* the wrong clocks' level changes still scored (the levels agent judges networks, not clocks).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from faults_support import query, record_figures, start_process, wait_for

from pipelines.adapters.rtcstats import samples_from_rtcstats_file
from pipelines.contracts import encode
from pipelines.demo_data import RTCSTATS
from pipelines.testing import Conditions, ScriptedParticipant

FIXTURE = RTCSTATS / "chrome-relay"
MINUTE = 60_000
LIVE_MINUTES = 3
YEAR_2023 = 1_685_577_600_000  # 2023-06-01, the dump's year
TWO_HOURS = 2 * 3600 * 1000
REGION = "eu1"
BAD = Conditions(loss=0.3)

LEVEL_SECONDS = ", ".join(f"sum(seconds_at_level_{n})" for n in range(6))


def live_and_wrong_clocks(now_ms: int) -> tuple[list[tuple[int, bytes, bytes]], int]:
    """(produce time, key, value) in produce order, and the live traffic's first minute.

    Live clients send every second for ``LIVE_MINUTES`` whole minutes up to ``now_ms``, each
    sample produced at its own time; the wrong clocks send during the same seconds.
    """
    start = now_ms - now_ms % MINUTE - LIVE_MINUTES * MINUTE
    seconds = (now_ms - start) // 1000
    ok = [ScriptedParticipant(f"PL-ok{i}", room_sid="RL-ok", region=REGION, start_ms=start)
          for i in range(3)]  # fmt: skip
    bad = [ScriptedParticipant(f"PL-bad{i}", room_sid="RL-bad", region=REGION, start_ms=start)
           for i in range(2)]  # fmt: skip
    old = [ScriptedParticipant(f"PW-2023-{i}", room_sid="RW-2023", region=REGION,
                               start_ms=YEAR_2023) for i in range(2)]  # fmt: skip
    ahead = [ScriptedParticipant(f"PW-ahead-{i}", room_sid="RW-ahead", region=REGION,
                                 start_ms=start + TWO_HOURS) for i in range(2)]  # fmt: skip
    dump = list(samples_from_rtcstats_file(FIXTURE, region=REGION))
    out: list[tuple[int, bytes, bytes]] = []
    for second in range(seconds):
        at = start + (second + 1) * 1000
        for p in ok:
            out.append((at, p.participant_sid.encode(), encode(p.step())))
        for p in bad:
            conditions = BAD if second < 90 else None
            out.append((at, p.participant_sid.encode(), encode(p.step(conditions))))
        if 30 <= second < 120:  # degraded the whole time: alerts were due in 2023 and ahead
            for p in old + ahead:
                out.append((at, p.participant_sid.encode(), encode(p.step(BAD))))
        if 40 <= second < 40 + len(dump):  # the README's example, published live
            s = dump[second - 40]
            out.append((at, s.participant_sid.encode(), encode(s)))
    return out, start


def room_totals(url: str) -> dict[int, tuple]:
    rows = query(url, f"SELECT extract(epoch FROM minute)::bigint, {LEVEL_SECONDS},"
                      f" sum(participants_seen) FROM room_rollups WHERE region = '{REGION}'"
                      " GROUP BY minute ORDER BY minute")  # fmt: skip
    return {r[0]: tuple(round(x, 3) for x in r[1:]) for r in rows}


def region_totals(url: str) -> dict[int, tuple]:
    rows = query(url, f"SELECT extract(epoch FROM minute)::bigint, {LEVEL_SECONDS},"
                      f" sum(participants_seen) FROM region_rollups WHERE region = '{REGION}'"
                      " GROUP BY minute ORDER BY minute")  # fmt: skip
    return {r[0]: tuple(round(x, 3) for x in r[1:]) for r in rows}


def counts(url: str) -> dict[str, int]:
    """Rows written, for the figures (and the message when the test fails)."""
    return {table: query(url, f"SELECT count(*) FROM {table}")[0][0]
            for table in ("room_rollups", "region_rollups", "alerts")}  # fmt: skip


def test_wrong_clocks_during_live_traffic_fill_no_minutes_and_open_no_alerts(
    sink_settings, kafka_io, no_staleness, tmp_path
):
    settings = sink_settings.with_overrides(thresholds_file=no_staleness)
    url = settings.database_url
    records, start = live_and_wrong_clocks(int(time.time() * 1000))
    worker = start_process("worker", settings, tmp_path, "worker")
    sink = start_process("sink", settings, tmp_path, "sink")
    try:
        kafka_io.produce(
            settings.topic_stats,
            [(key, value) for _, key, value in records],
            timestamps=[at for at, _, _ in records],
        )
        live_minutes = lambda: query(  # noqa: E731
            url, "SELECT count(*) FROM room_rollups WHERE room_sid = 'RL-ok'"
        )[0][0]
        wait_for(lambda: live_minutes() >= LIVE_MINUTES, 300, "the live minutes to close")
        # Two more rollups sweeps (every 5 s) and alert sweeps: time for any flood to show.
        time.sleep(12)
        assert worker.alive and sink.alive, worker.log_tail() + sink.log_tail()
        worker.stop(timeout=60)
        finished = time.time()
        # The sink writes what the worker published; room and region totals then agree.
        try:
            wait_for(lambda: room_totals(url) == region_totals(url), 60, "region rows to settle")
        except AssertionError:
            raise AssertionError(f"room and region totals disagree: {counts(url)}") from None
    finally:
        worker.stop(timeout=60)
        sink.stop(timeout=60)
    room_rows = query(url, "SELECT room_sid, count(*), min(minute), max(minute)"
                           " FROM room_rollups GROUP BY room_sid ORDER BY room_sid")  # fmt: skip
    region_rows = query(url, "SELECT count(*) FROM region_rollups")[0][0]
    alerts = query(url, "SELECT kind, coalesce(participant_sid, room_sid, region), opened_at"
                        " FROM alerts ORDER BY opened_at")  # fmt: skip
    by_room = {room: (n, first, last) for room, n, first, last in room_rows}
    figures = {
        "room_rollup_rows": sum(n for n, _, _ in by_room.values()),
        "region_rollup_rows": region_rows,
        "alerts": len(alerts),
        "alerts_opened_before_the_traffic": sum(o.timestamp() * 1000 < start for *_, o in alerts),
        "room_rollup_rows_by_room": {room: n for room, (n, _, _) in by_room.items()},
    }
    # Rollups: the live rooms only, and only the minutes of the live traffic and the wait.
    assert set(by_room) == {"RL-ok", "RL-bad"}, figures
    elapsed_minutes = int((finished * 1000 - start) // MINUTE) + 1
    for room, (n, first, last) in by_room.items():
        assert n <= elapsed_minutes, (room, n, elapsed_minutes)
        assert first.timestamp() * 1000 >= start, (room, first)
        assert last.timestamp() <= finished, (room, last)
    # Alerts: the degraded live room opened its own (so alerting works), nothing else did,
    # and nothing opened before the live traffic began or after now.
    opened_for = {who for _, who, _ in alerts}
    assert "RL-bad" in opened_for, alerts
    assert opened_for <= {"RL-bad", "PL-bad0", "PL-bad1", REGION}, alerts
    for kind, who, opened_at in alerts:
        assert start / 1000 <= opened_at.timestamp() <= finished, (kind, who, opened_at)
    # Room and region totals agree (the wait above fails the test if they never do).
    assert room_totals(url) == region_totals(url) != {}
    # The wrong clocks were still scored: their level changes are in the history.
    scored = query(url, "SELECT count(DISTINCT participant_sid) FROM level_changes"
                        " WHERE room_sid IN ('RW-2023', 'RW-ahead', 'chrome-relay')")  # fmt: skip
    assert scored[0][0] >= 5, scored
    log = Path(worker.log_path).read_text(errors="replace")
    assert "s behind the stream clock" in log
    assert "s ahead of the stream clock" in log
    record_figures("wrong_clocks", {**figures, "live_minutes": LIVE_MINUTES,
                                    "finished": datetime.fromtimestamp(finished).isoformat()})
