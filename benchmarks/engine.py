"""Scoring-engine throughput on one core, against msgspec JSON decoding of the same samples.

Run ``python benchmarks/engine.py [--samples N] [--seed S] [--repeat R]``: prints one JSON
document. ``run()`` returns the same dict (for ``netquality bench``).

The "typical sample" is one participant publishing audio + video and subscribing to 2 audio
and 2 video tracks. Two mixes of networks:

- steady: each participant keeps its network; now and then (about 2 % of participant-seconds)
  an episode of loss or of a bandwidth drop starts and lasts a few seconds. This is what a
  production stream looks like: a few % of samples produce an event.
- turbulent: every second draws new conditions (loss 0-5 %, uplink 1-5 Mbit/s): ~20 % events.

Each figure is the median of ``repeat`` runs over the same samples, each run with a fresh
engine. Wall-clock is noisy on a shared machine, so the baseline (decoding the same samples
from JSON with msgspec, which every sample pays anyway) is measured in the same run, and the
ratios engine/baseline are the figures to compare across machines.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a checkout: make `pipelines` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec

from pipelines.contracts.stats import StatsSample
from pipelines.quality import Engine, participant
from pipelines.testing import Conditions, ScriptedParticipant

BATCH_SIZE = 1_000
"""Samples per ``feed_batch`` call, about one Kafka poll."""

STEPS = 60
"""Seconds per participant: its first sample always emits, so keep that a small share."""


def typical_participant(i: int) -> ScriptedParticipant:
    """1 audio + 1 video outbound, 2 audio + 2 video inbound."""
    return ScriptedParticipant(
        f"PA{i:06d}",
        room_sid=f"RM{i // 5:05d}",
        publish_video=True,
        subscribe_audio=2,
        subscribe_video=2,
    )


def steady_mix(samples: int, seed: int) -> list[StatsSample]:
    """Mostly stable networks; rare loss or bandwidth episodes of a few seconds."""
    rnd = random.Random(seed)
    participants = [typical_participant(i) for i in range(max(samples // STEPS, 1))]
    base = [
        Conditions(
            uplink=rnd.choice([3e6, 5e6, 20e6]),
            downlink=rnd.choice([10e6, 50e6]),
            rtt=rnd.uniform(0.02, 0.15),
            jitter=rnd.uniform(0.001, 0.01),
        )
        for _ in participants
    ]
    episode_left = [0] * len(participants)
    episode: list[Conditions] = list(base)
    out: list[StatsSample] = []
    while len(out) < samples:
        for i, p in enumerate(participants):
            if episode_left[i] == 0 and rnd.random() < 0.02:
                episode_left[i] = rnd.randint(2, 8)
                kind = rnd.random()
                if kind < 0.5:
                    episode[i] = Conditions(
                        uplink=base[i].uplink, loss=rnd.choice([0.03, 0.06, 0.12]),
                        rtt=base[i].rtt, jitter=base[i].jitter,
                    )  # fmt: skip
                else:
                    episode[i] = Conditions(
                        uplink=rnd.choice([300e3, 800e3, 1.5e6]),
                        rtt=base[i].rtt, jitter=base[i].jitter,
                    )  # fmt: skip
            if episode_left[i] > 0:
                episode_left[i] -= 1
                out.append(p.step(episode[i]))
            else:
                out.append(p.step(base[i]))
            if len(out) == samples:
                break
    return out


def turbulent_mix(samples: int, seed: int) -> list[StatsSample]:
    """New random conditions every second (the old rough bench): ~20 % of samples emit."""
    rnd = random.Random(seed)
    participants = [typical_participant(i) for i in range(max(samples // STEPS, 1))]
    out: list[StatsSample] = []
    while len(out) < samples:
        for p in participants:
            c = Conditions(
                loss=rnd.choice([0, 0, 0, 0.01, 0.05]), uplink=rnd.choice([5e6, 5e6, 1e6])
            )
            out.append(p.step(c))
            if len(out) == samples:
                break
    return out


def _measure(payloads: list[bytes], repeat: int) -> dict[str, float]:
    """Decode each chunk from JSON (the baseline), then feed it (as a consumer would).

    Samples are decoded fresh for every run so the engine sees objects as a consumer does
    (just decoded, still in cache), not objects generated long before.
    """
    n = len(payloads)
    gc.collect()
    chunks = [payloads[i : i + BATCH_SIZE] for i in range(0, n, BATCH_SIZE)]
    decode = msgspec.json.Decoder(StatsSample).decode
    clock = time.process_time  # CPU time of this process: one core, whatever else runs
    rates: dict[str, list[float]] = {"baseline": [], "single": [], "batch": []}
    events = {"single": 0, "batch": 0}
    for _ in range(repeat):
        for path in ("single", "batch"):
            engine = Engine()
            decode_s = engine_s = 0.0
            emitted = 0
            for chunk in chunks:
                t0 = clock()
                decoded = [decode(p) for p in chunk]
                t1 = clock()
                if path == "batch":
                    emitted += len(engine.feed_batch(decoded))
                else:
                    feed = engine.feed
                    for sample in decoded:
                        emitted += len(feed(sample))
                t2 = clock()
                decode_s += t1 - t0
                engine_s += t2 - t1
            rates["baseline"].append(n / decode_s)
            rates[path].append(n / engine_s)
            events[path] = emitted
    if events["single"] != events["batch"]:
        raise AssertionError(f"single and batch paths disagree: {events}")
    baseline = statistics.median(rates["baseline"])
    single = statistics.median(rates["single"])
    batch = statistics.median(rates["batch"])
    return {
        "samples": n,
        "events": events["batch"],
        "event_share": round(events["batch"] / n, 4),
        "single_samples_per_s": round(single),
        "batch_samples_per_s": round(batch),
        "batch_events_per_s": round(batch * events["batch"] / n),
        "baseline_json_decode_samples_per_s": round(baseline),
        "single_vs_baseline": round(single / baseline, 3),
        "batch_vs_baseline": round(batch / baseline, 3),
    }


def _encoded(samples: list[StatsSample]) -> list[bytes]:
    """The samples as a client sends them; the generated objects are dropped."""
    return [msgspec.json.encode(s) for s in samples]


def compiled() -> bool:
    """Whether the scoring core runs as a compiled (mypyc) extension."""
    return not (participant.__file__ or "").endswith(".py")


def run(samples: int = 60_000, seed: int = 1, repeat: int = 5) -> dict:
    """Measure both mixes; returns the JSON-ready result."""
    return {
        "benchmark": "netquality.engine",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "compiled_core": compiled(),
        "typical_sample": "1 audio + 1 video outbound, 2 audio + 2 video inbound",
        "repeat": repeat,
        "batch_size": BATCH_SIZE,
        "steady": _measure(_encoded(steady_mix(samples, seed)), repeat),
        "turbulent": _measure(_encoded(turbulent_mix(samples, seed)), repeat),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.samples, args.seed, args.repeat), indent=2))


if __name__ == "__main__":
    main()
