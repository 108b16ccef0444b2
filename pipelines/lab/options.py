"""The options of ``netquality lab``, apart from the command so that building the CLI's parser
stays cheap (the command itself pulls in Playwright, Kafka and numpy)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.lab.profile import SCENARIOS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile", default="uplink-loss",
        help=f"a scenario ({', '.join(SCENARIOS)}), trace:<family/name> (a capacity trace of "
        "pipelines/simulate/traces as A's uplink rate) or a JSON timeline file "
        "(docs/lab.md); default uplink-loss")
    parser.add_argument("--duration", type=float, help="seconds (default: the profile's)")
    parser.add_argument("--participants", type=int, default=2, help="2 to 6 (default 2)")
    parser.add_argument("--video", default="640x360@15",
                        help="camera clip WIDTHxHEIGHT@FPS (default 640x360@15)")
    parser.add_argument("--out", type=Path,
                        help="output directory (default var/lab/<profile>-<time>)")
    parser.add_argument("--ingest-url",
                        help="publish to this running ingest (token from "
                        "NETQUALITY_INGEST_TOKENS) instead of starting a worker and an ingest")
    parser.add_argument("--region", default="lab", help="region of the call (default lab)")
    parser.add_argument("--quiet", action="store_true", help="no per-second progress")
