"""Drain benchmark: how fast one ``netquality worker`` empties a pre-filled stats topic.

The measurement itself is the ``drain`` section of ``netquality bench`` (benchmarks/harness):
the simulator's samples pre-filled as batch envelopes and as bare samples, ONE worker process,
rate = samples / (first level event -> last expected level event), each beside a bare aiokafka
consumer draining the same topic. This script runs that section alone:

    python benchmarks/drain.py [--samples 500000] [--participants 10000] [--seed 1]
                               [--partitions 8] [--timeout 300] [--quiet]

It prints one JSON document (progress on stderr); ``run()`` returns the same dict.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script from a checkout: make `pipelines` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness.run import run as run_bench
from benchmarks.harness.sizes import BenchSizes


def run(
    samples: int = 500_000,
    participants: int = 10_000,
    seed: int = 1,
    partitions: int = 8,
    timeout_s: float = 300.0,
    progress: bool = True,
) -> dict[str, Any]:
    """The bench's drain section with these sizes: its JSON-ready result."""
    sizes = BenchSizes(
        drain_samples=samples,
        drain_participants=participants,
        seed=seed,
        partitions=partitions,
        timeout_s=timeout_s,
    )
    return run_bench(["drain"], sizes, progress=progress)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=500_000)
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per drain")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    result = run(
        args.samples, args.participants, args.seed, args.partitions, args.timeout,
        progress=not args.quiet,
    )  # fmt: skip
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
