"""The command line of the bench: ``netquality bench`` and ``python benchmarks/bench.py``.

Imports only :mod:`sizes` at import time: ``netquality`` builds this parser on every call."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks import harness
from benchmarks.harness.sizes import SECTIONS, BenchSizes


def main(argv: list[str] | None = None) -> int:
    """``netquality bench`` / ``python benchmarks/bench.py``."""
    import argparse  # noqa: PLC0415

    summary = (harness.__doc__ or "").splitlines()[0]
    parser = argparse.ArgumentParser(prog="netquality bench", description=summary)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


def add_arguments(parser: Any) -> None:
    defaults = BenchSizes()
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated, of {','.join(SECTIONS)}"
    )
    for name, value in defaults.__dict__.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out-dir", type=Path, default=Path("var/bench"))
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run_from_args(args: Any) -> int:
    from benchmarks.harness.run import run  # noqa: PLC0415

    sizes = BenchSizes(**{k: getattr(args, k) for k in BenchSizes().__dict__})
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    result = run(sections, sizes, args.out_dir, progress=not args.quiet)
    print(json.dumps(result, indent=2))
    print(f"markdown table: {result['markdown']}", file=sys.stderr)
    return 0
