"""``netquality bench``: the entry point only; the harness is ``benchmarks/harness``.

The harness imports ``pipelines``, so ``pipelines`` imports it lazily, here only: never at
import time. A checkout and the wheel have ``benchmarks``; an install without it (the
Dockerfile copies ``pipelines/`` alone) still builds every other command, and ``bench`` says
what is missing instead of failing with an import error.
"""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import Any, NoReturn

MISSING = (
    "netquality bench: the benchmark harness (the `benchmarks` package) is not installed; run it "
    "from a netquality checkout (`make bench`) or install the netquality wheel"
)


def _command() -> ModuleType | None:
    try:
        from benchmarks.harness import command  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if exc.name not in ("benchmarks", "benchmarks.harness"):
            raise
        return None
    return command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The harness's flags. Without the harness they are unknown, so ``netquality bench`` says
    what is missing instead of parsing them (every other command is unaffected)."""
    command = _command()
    if command is None:
        parser.parse_known_args = _missing  # type: ignore[method-assign,assignment]
    else:
        command.add_arguments(parser)


def _missing(*_: Any, **__: Any) -> NoReturn:
    raise SystemExit(MISSING)


def run_from_args(args: Any) -> int:
    command = _command()
    if command is None:
        raise SystemExit(MISSING)
    return int(command.run_from_args(args))
