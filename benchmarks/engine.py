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
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a checkout: make `pipelines` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec

from pipelines.contracts.stats import StatsSample
from pipelines.quality import COMPILED, Engine, _native
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


def variants() -> dict[str, type[Engine]]:
    """The engines to compare: the loaded core, and with a compiled one also its sources."""
    if not COMPILED:
        return {"pure": Engine}
    return {"compiled": Engine, "pure": _native.pure_engine_module().Engine}


def _measure(payloads: list[bytes], repeat: int, engines: dict[str, type[Engine]]) -> dict:
    """Decode each chunk from JSON (the baseline), then feed it (as a consumer would).

    Samples are decoded fresh for every run so the engine sees objects as a consumer does
    (just decoded, still in cache), not objects generated long before. Rounds interleave the
    variants, so a busy phase of a shared machine slows both alike; each variant's ratio is
    to the baseline measured in its own runs.
    """
    n = len(payloads)
    gc.collect()
    chunks = [payloads[i : i + BATCH_SIZE] for i in range(0, n, BATCH_SIZE)]
    decode = msgspec.json.Decoder(StatsSample).decode
    clock = time.process_time  # CPU time of this process: one core, whatever else runs
    rates = {v: {"baseline": [], "single": [], "batch": []} for v in engines}
    events: dict[tuple[str, str], int] = {}
    for _ in range(repeat):
        for variant, engine_cls in engines.items():
            for path in ("single", "batch"):
                engine = engine_cls()
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
                rates[variant]["baseline"].append(n / decode_s)
                rates[variant][path].append(n / engine_s)
                events[variant, path] = emitted
    if len(set(events.values())) != 1:
        raise AssertionError(f"paths or variants disagree on the event count: {events}")
    emitted = next(iter(events.values()))
    result: dict = {"samples": n, "events": emitted, "event_share": round(emitted / n, 4)}
    for variant, r in rates.items():
        baseline = statistics.median(r["baseline"])
        single = statistics.median(r["single"])
        batch = statistics.median(r["batch"])
        result[variant] = {
            "single_samples_per_s": round(single),
            "batch_samples_per_s": round(batch),
            "batch_events_per_s": round(batch * emitted / n),
            "baseline_json_decode_samples_per_s": round(baseline),
            "single_vs_baseline": round(single / baseline, 3),
            "batch_vs_baseline": round(batch / baseline, 3),
        }
    if "compiled" in result:
        result["compiled_vs_pure"] = {
            path: round(result["compiled"][f"{path}_vs_baseline"]
                        / result["pure"][f"{path}_vs_baseline"], 2)
            for path in ("single", "batch")
        }  # fmt: skip
    return result


def _encoded(samples: list[StatsSample]) -> list[bytes]:
    """The samples as a client sends them; the generated objects are dropped."""
    return [msgspec.json.encode(s) for s in samples]


MIXES = {"steady": steady_mix, "turbulent": turbulent_mix}


def run(samples: int = 60_000, seed: int = 1, repeat: int = 5) -> dict:
    """Measure both mixes with every available variant; returns the JSON-ready result."""
    engines = variants()
    load_start = os.getloadavg()[0]
    result: dict = {
        "benchmark": "netquality.engine",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "variant": "compiled" if COMPILED else "pure",
        "compiled_core": COMPILED,
        "core": _native.CHOICE.reason,
        "variants_measured": list(engines),
        "typical_sample": "1 audio + 1 video outbound, 2 audio + 2 video inbound",
        "repeat": repeat,
        "batch_size": BATCH_SIZE,
        "cpus": os.cpu_count(),
    }
    for mix, generate in MIXES.items():
        result[mix] = _measure(_encoded(generate(samples, seed)), repeat, engines)
    result["load_average_1m"] = [round(load_start, 2), round(os.getloadavg()[0], 2)]
    return result


def feed_only(variant: str, samples: int, seed: int, mix: str) -> None:
    """Generate, encode and decode a mix, then feed it to one variant ("none": do not feed).

    What ``instructions`` runs under callgrind: the difference to "none" is the engine.
    """
    decode = msgspec.json.Decoder(StatsSample).decode
    decoded = [decode(p) for p in _encoded(MIXES[mix](samples, seed))]
    if variant == "none":
        return
    engine = variants()[variant]()
    for i in range(0, len(decoded), BATCH_SIZE):
        engine.feed_batch(decoded[i : i + BATCH_SIZE])


def instructions(samples: int = 5_000, seed: int = 1, mix: str = "steady") -> dict:
    """Machine instructions per sample of the batch path, counted by valgrind (callgrind).

    Unlike time, instruction counts do not depend on what else runs on the machine, so the
    compiled/pure ratio they give is the robust one. Each count is a whole child process
    (interpreter start, sample generation, decoding) minus the same process without feeding.
    """
    if shutil.which("valgrind") is None:
        return {"error": "valgrind not installed"}
    counts: dict[str, int] = {}
    names = ["none", *variants()]
    for variant in names:
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                sys.executable, str(Path(__file__).resolve()), "--feed-only", variant,
                "--samples", str(samples), "--seed", str(seed), "--mix", mix]  # fmt: skip
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count from callgrind: {done.stderr[-500:]}")
        counts[variant] = int(found.group(1))
    per_sample = {v: round((counts[v] - counts["none"]) / samples) for v in names[1:]}
    result: dict = {"mix": mix, "samples": samples,
                    "decode_and_setup_instructions": counts["none"],
                    "engine_instructions_per_sample": per_sample}  # fmt: skip
    if "compiled" in per_sample:
        result["pure_vs_compiled"] = round(per_sample["pure"] / per_sample["compiled"], 2)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=60_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per sample with valgrind instead (slow: use ~5000 samples)",
    )
    parser.add_argument("--mix", choices=sorted(MIXES), default="steady")
    parser.add_argument("--feed-only", choices=["none", "compiled", "pure"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.feed_only:
        feed_only(args.feed_only, args.samples, args.seed, args.mix)
    elif args.instructions:
        print(json.dumps(instructions(args.samples, args.seed, args.mix), indent=2))
    else:
        print(json.dumps(run(args.samples, args.seed, args.repeat), indent=2))


if __name__ == "__main__":
    main()
