"""All benchmarks in one run: the same as ``netquality bench`` (see benchmarks/harness)."""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script from a checkout: make `pipelines` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness.command import main

if __name__ == "__main__":
    sys.exit(main())
