"""Out-of-order, duplicated and replayed samples, clock skew and counter resets: levels stay right.

"Right" means: duplicates and replays change nothing (the events equal the clean stream's);
a skewed client clock changes event times but not levels; a counter reset is scored as a new
stream; and whatever arrives, the real worker emits exactly what the offline engine
(``netquality score``) emits for the same input.
"""

from __future__ import annotations

import random

import msgspec
from faults_support import record_figures
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.contracts import decode_level, encode
from pipelines.quality import Engine, load_thresholds
from pipelines.testing import Conditions, ScriptedParticipant

SKEW_MS = 2 * 3600 * 1000


def clean_stream(n: int = 12, steps: int = 40) -> list:
    people = [ScriptedParticipant(f"PD{i:02d}", publish_video=i % 2 == 0) for i in range(n)]
    return [
        p.step(Conditions(loss=0.15 if (t // 5 + i) % 3 == 0 else 0.0))
        for t in range(steps)
        for i, p in enumerate(people)
    ]


def with_duplicates_and_replays(samples: list, rng: random.Random) -> list:
    """Each sample maybe twice in a row, and old samples replayed later (seq already seen)."""
    out = []
    for i, s in enumerate(samples):
        out.append(s)
        if rng.random() < 0.2:
            out.append(s)
        if i > 50 and rng.random() < 0.1:
            out.append(samples[rng.randrange(0, i - 20)])
    return out


def levels_only(events) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for e in events:
        out.setdefault(e.participant_sid, []).append((e.event_id, e.level, e.previous_level))
    return out


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31))
def test_duplicates_and_replays_change_nothing_offline(seed):
    samples = clean_stream(4, 25)
    noisy = with_duplicates_and_replays(samples, random.Random(seed))
    assert Engine().feed_batch(noisy) == Engine().feed_batch(samples)


def test_clock_skew_changes_times_not_levels():
    samples = clean_stream(4, 30)
    for shift in (SKEW_MS, -SKEW_MS):
        skewed = [msgspec.structs.replace(s, timestamp=s.timestamp + shift) for s in samples]
        assert levels_only(Engine().feed_batch(skewed)) == levels_only(
            Engine().feed_batch(samples)
        )


def test_real_worker_on_disordered_input_matches_the_offline_engine(
    worker_settings, kafka_io, start_worker, no_staleness
):
    rng = random.Random(11)
    settings_ = worker_settings.with_overrides(thresholds_file=no_staleness)
    thresholds = load_thresholds(no_staleness)
    clean = clean_stream()
    clean_events = Engine(thresholds).feed_batch(clean)
    noisy = with_duplicates_and_replays(clean, rng)
    # Client clocks two hours ahead (PD00) and behind (PD01).
    skew = {"PD00": SKEW_MS, "PD01": -SKEW_MS}
    noisy = [
        msgspec.structs.replace(s, timestamp=s.timestamp + skew[s.participant_sid])
        if s.participant_sid in skew
        else s
        for s in noisy
    ]
    # Out of order: swap some adjacent samples of the same participant (the later one wins,
    # the earlier one is then stale and dropped, as the contract says).
    swapped: set[str] = set()
    for i in range(len(noisy) - 13):
        if rng.random() < 0.05 and noisy[i].participant_sid == noisy[i + 12].participant_sid:
            noisy[i], noisy[i + 12] = noisy[i + 12], noisy[i]
            swapped.add(noisy[i].participant_sid)
    # A counter reset: PD02's streams restart from zero half way.
    half = {s.seq for s in noisy if s.participant_sid == "PD02"}
    cut = sorted(half)[len(half) // 2]
    base = next(s for s in clean if s.participant_sid == "PD02" and s.seq == cut - 1)
    offsets = {t.track_sid: (t.bytes_sent, t.packets_sent) for t in base.outbound}

    def reset(s):
        if s.participant_sid != "PD02" or s.seq < cut:
            return s
        tracks = [
            msgspec.structs.replace(
                t,
                bytes_sent=t.bytes_sent - offsets[t.track_sid][0],
                packets_sent=t.packets_sent - offsets[t.track_sid][1],
            )
            for t in s.outbound
        ]
        return msgspec.structs.replace(s, outbound=tracks)

    noisy = [reset(s) for s in noisy]
    expected = Engine(thresholds).feed_batch(noisy)
    expected_by_id = {e.event_id: msgspec.to_builtins(e) for e in expected}
    kafka_io.produce(
        settings_.topic_stats, [(s.participant_sid.encode(), encode(s)) for s in noisy]
    )
    start_worker(settings_)
    records = kafka_io.read(
        settings_.topic_levels, until=lambda r: len(r) >= len(expected), timeout=120
    )
    got = [decode_level(r.value) for r in records]
    assert {e.event_id: msgspec.to_builtins(e) for e in got} == expected_by_id
    assert len(got) == len(expected)
    assert all(0 <= e.level <= 5 for e in got)
    # Participants with only duplicates and replays get exactly the clean run's events.
    untouched = {f"PD{i:02d}" for i in range(12)} - set(skew) - {"PD02"} - swapped
    assert swapped and untouched, (swapped, untouched)
    clean_by_sid, got_by_sid = levels_only(clean_events), levels_only(got)
    for sid in untouched:
        assert got_by_sid[sid] == clean_by_sid[sid], sid
    # Skewed clocks: the same levels as the clean run (unless also swapped).
    for sid in set(skew) - swapped:
        assert [x[1:] for x in got_by_sid[sid]] == [x[1:] for x in clean_by_sid[sid]], sid
    record_figures(
        "disorder",
        {
            "clean_samples": len(clean),
            "delivered_samples": len(noisy),
            "duplicates_and_replays": len(noisy) - len(clean),
            "clock_skew_ms": SKEW_MS,
            "events": len(got),
            "out_of_order_participants": len(swapped),
            "equal_to_offline_engine": True,
        },
    )
