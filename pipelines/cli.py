"""The ``netquality`` command: one entry point, one sub-command per face of the pipeline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.config import settings_table


def _cmd_settings(_: argparse.Namespace) -> int:
    for env, default, doc in settings_table():
        print(f"{env:34} {default or '-':30} {doc}")
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    from pipelines.quality import Engine, load_thresholds
    from pipelines.scorer import run

    engine = Engine(load_thresholds(args.thresholds))
    summary = run(
        args.source,
        args.format,
        engine,
        sys.stdout.buffer,
        sys.stderr,
        room_sid=args.room,
        region=args.region,
    )
    sys.stdout.flush()
    if args.summary or summary.skipped:
        print(
            f"scored {summary.samples} samples into {summary.events} level events; "
            f"{summary.skipped} input lines skipped, {summary.ignored} duplicate or "
            "out-of-order samples ignored",
            file=sys.stderr,
        )
    return 1 if summary.skipped else 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from pipelines.config import Settings
    from pipelines.worker import run_worker

    run_worker(Settings.from_env(), loglevel=args.loglevel)
    return 0


def _cmd_demo(_: argparse.Namespace) -> int:
    from rich.console import Console

    from pipelines.demo import run_demo

    return run_demo(Console())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netquality",
        description="Network Quality Levels (0-5) for video-call participants, as a stream.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo", help="score the bundled real browser dumps and show their levels"
    )
    demo.set_defaults(handler=_cmd_demo)
    settings = sub.add_parser("settings", help="list every setting with its environment variable")
    settings.set_defaults(handler=_cmd_settings)

    score = sub.add_parser(
        "score",
        help="offline scorer: stats samples in, level-change events out (JSON lines)",
        description=(
            "Score stats samples with the same engine as the streaming worker. Writes one "
            "netquality.level.v1 JSON line per level change, in input order. Bad input lines "
            "are reported on stderr with their line number and skipped; the exit status is 1 "
            "if any were skipped."
        ),
    )
    score.add_argument("source", nargs="?", default="-", help="input file, or - for stdin")
    score.add_argument(
        "--format",
        choices=["samples", "rtcstats", "getstats"],
        default="samples",
        help="samples: netquality.stats.v1 JSON lines (default); rtcstats: a jitsi "
        "rtcstats-server dump; getstats: one RTCStatsReport JSON document",
    )
    score.add_argument("--room", help="room id for rtcstats/getstats input (default: file name)")
    score.add_argument("--region", default="unknown", help="region for rtcstats/getstats input")
    score.add_argument("--thresholds", type=Path, help="JSON file overriding scoring thresholds")
    score.add_argument("--summary", action="store_true", help="print counts on stderr at the end")
    score.set_defaults(handler=_cmd_score)

    worker = sub.add_parser(
        "worker",
        help="run the streaming worker (levels agent) until SIGTERM/SIGINT",
        description="Consume netquality.stats.v1 and publish level changes. Configured from "
        "the environment (see `netquality settings`); without KAFKA_BOOTSTRAP_SERVERS it "
        "starts an embedded broker.",
    )
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning"])
    worker.set_defaults(handler=_cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
