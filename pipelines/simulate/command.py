"""The ``netquality simulate`` command: options in, a paced or fast run out, with progress."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.simulate.generator import DEFAULT_START_MS, Simulation
from pipelines.simulate.outputs import JsonLinesOutput, KafkaOutput, SampleOutput
from pipelines.simulate.runner import SimulationCounts, run_simulation
from pipelines.simulate.scenario import default_scenario


def participants_range(text: str) -> tuple[int, int]:
    """``4-6`` or ``5`` as (min, max)."""
    lo, _, hi = text.partition("-")
    low, high = int(lo), int(hi or lo)
    if not 1 <= low <= high:
        raise argparse.ArgumentTypeError(f"bad participants range {text!r} (e.g. 4-6)")
    return low, high


def room_count(text: str) -> int:
    """``--rooms``: the default scenario needs two rooms (one with the incident, one without)."""
    rooms = int(text)
    if rooms < 2:
        raise argparse.ArgumentTypeError(f"{text} rooms: the scenario needs at least 2")
    return rooms


def seconds(text: str) -> int:
    """``--duration``: whole seconds, 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: a duration is 0 (no limit) or more seconds")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=0, help="same seed, same samples (default 0)")
    parser.add_argument("--rooms", type=room_count, default=12,
                        help="rooms across 3 regions (default 12)")
    parser.add_argument("--participants", type=participants_range, default=(4, 6),
                        help="participants per room, MIN-MAX (default 4-6)")
    parser.add_argument("--duration", type=seconds, default=120,
                        help="seconds of calls to simulate (default 120; 0 = until Ctrl-C)")
    parser.add_argument("--realtime", action="store_true",
                        help="one sample per participant per second on the wall clock "
                        "(default: as fast as possible)")
    parser.add_argument("--output", default="kafka",
                        help="kafka (the stats topic, default), - (JSON lines on stdout) or a file")
    parser.add_argument("--start-ms", type=int, default=None,
                        help="timestamp of second 0 (default: now with --realtime, else "
                        f"{DEFAULT_START_MS} so output is reproducible)")


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    start_ms = args.start_ms
    if start_ms is None:
        start_ms = (int(time.time()) * 1000) if args.realtime else DEFAULT_START_MS
    scenario = default_scenario(args.rooms, args.participants, seed=args.seed)
    sim = Simulation(scenario, seed=args.seed, start_ms=start_ms)
    duration = args.duration or None
    with contextlib.ExitStack() as stack:
        output: SampleOutput
        if args.output == "kafka":
            from pipelines.config import Settings  # noqa: PLC0415
            from pipelines.runtime import Runtime  # noqa: PLC0415
            from pipelines.runtime.service import prepare  # noqa: PLC0415

            runtime = Runtime(Settings.from_env(), database=False, find_demo=True)
            stack.callback(runtime.close)
            settings = prepare(runtime)  # endpoints and topics, as every service's start-up
            if runtime.broker is not None:
                console.print("[yellow]KAFKA_BOOTSTRAP_SERVERS is unset and no demo runs: "
                              "publishing to a throwaway embedded broker[/]")
            output = KafkaOutput(settings)
        elif args.output == "-":
            output = JsonLinesOutput(sys.stdout.buffer)
        else:
            try:
                target = open(args.output, "wb")  # noqa: SIM115
            except OSError as exc:
                from pipelines.usage import CommandError  # noqa: PLC0415

                raise CommandError(f"--output {args.output}: cannot write it ({exc.strerror}); "
                                   "give a writable file, - for stdout, or kafka") from None
            output = JsonLinesOutput(target, owns=True)
        stack.callback(output.close)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        counts = SimulationCounts()
        progress = Progress(
            TextColumn("[bold]simulating[/] {task.description}"), BarColumn(),
            TextColumn("{task.completed}/{task.total} s" if duration else "{task.completed} s"),
            TextColumn("{task.fields[samples]} samples ({task.fields[rate]:.0f}/s)"),
            TimeElapsedColumn(), console=console, transient=False,
        )
        with progress:
            task = progress.add_task(
                f"{len(scenario.rooms)} rooms, {len(scenario.participants)} participants",
                total=duration, samples=0, rate=0.0,
            )

            def on_second(second: int, _: object) -> None:
                progress.update(task, completed=second + 1, samples=counts.samples,
                                rate=counts.samples_per_s)

            try:
                run_simulation(sim, output, duration_s=duration, realtime=args.realtime,
                               stop=stop, counts=counts, on_second=on_second)
            except BrokenPipeError:  # `simulate --output - | head`: the reader has enough
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
        if isinstance(output, KafkaOutput):
            output.flush()
            if output.errors:
                console.print(f"[red]{len(output.errors)} samples failed: {output.errors[0]}[/]")
                return 1
    console.print(f"{counts.samples} samples from {len(counts.participants)} participants over "
                  f"{counts.seconds} s (seed {args.seed})")
    return 0
