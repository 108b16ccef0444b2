"""The ``netquality`` command: one entry point, one sub-command per face of the pipeline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pipelines.config import settings_table


def _cmd_settings(_: argparse.Namespace) -> int:
    for env, default, doc in settings_table():
        print(f"{env:34} {default or '-':30} {doc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netquality",
        description="Network Quality Levels (0-5) for video-call participants, as a stream.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    settings = sub.add_parser("settings", help="list every setting with its environment variable")
    settings.set_defaults(handler=_cmd_settings)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
