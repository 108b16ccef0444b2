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


def _cmd_bench(args: argparse.Namespace) -> int:
    from pipelines.bench import run_from_args

    return run_from_args(args)


def _cmd_demo(_: argparse.Namespace) -> int:
    from rich.console import Console

    from pipelines.demo import run_demo

    return run_demo(Console())


def _cmd_db(args: argparse.Namespace) -> int:
    import contextlib
    import logging

    from pipelines.config import Settings
    from pipelines.runtime import Runtime
    from pipelines.storage import migrate

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    steps = logging.getLogger("alembic.runtime.migration")  # "Running upgrade  -> 0001, ..."
    steps.setLevel(logging.INFO)
    steps.addFilter(lambda record: record.getMessage().startswith("Running "))
    settings = Settings.from_env()
    with contextlib.ExitStack() as stack:
        url = settings.database_url
        if not url:
            runtime = Runtime(settings, kafka=False)
            print(
                f"DATABASE_URL is unset: starting the embedded Postgres under "
                f"{runtime.state_dir / 'postgres'} for this command",
                file=sys.stderr,
            )
            url = stack.enter_context(runtime).settings.database_url
        if not url:
            raise SystemExit("no database URL")
        if args.db_command in ("upgrade", "downgrade"):
            getattr(migrate, args.db_command)(url, args.revision)
            print(f"database at revision {migrate.current(url) or 'none (base)'}")
        elif args.db_command == "current":
            at, head = migrate.current(url), migrate.head()
            print(f"{at or 'none'} (head {head}{', up to date' if at == head else ''})")
        else:
            created = migrate.ensure_future_partitions(url, args.days)
            print(f"created {len(created)} partitions{': ' if created else ''}{' '.join(created)}")
    return 0


def _cmd_sink(args: argparse.Namespace) -> int:
    import logging

    from pipelines.config import Settings
    from pipelines.storage.sink import run_sink

    logging.basicConfig(
        level=args.loglevel.upper(),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s",
    )
    run_sink(Settings.from_env())
    return 0


def _add_loglevel(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loglevel", default="info", choices=["debug", "info", "warning"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netquality",
        description="Network Quality Levels (0-5) for video-call participants, as a stream.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser("demo", help="score the bundled real browser dumps and show their levels")
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
        help="run the streaming worker (levels and rollups agents) until SIGTERM/SIGINT",
        description="Consume netquality.stats.v1, publish level changes and per-minute "
        "rollups. Configured from "
        "the environment (see `netquality settings`); without KAFKA_BOOTSTRAP_SERVERS it "
        "starts an embedded broker.",
    )
    _add_loglevel(worker)
    worker.set_defaults(handler=_cmd_worker)

    sink = sub.add_parser(
        "sink",
        help="write levels, current levels, rollups, alerts and dead-letter counts to Postgres",
        description="Consume the levels, current-levels, rollups, alerts and dead-letter topics "
        "into Postgres in batches until SIGTERM/SIGINT; Kafka offsets are committed only after "
        "the database commit. Without DATABASE_URL it starts (and migrates) an embedded Postgres.",
    )
    _add_loglevel(sink)
    sink.set_defaults(handler=_cmd_sink)

    from pipelines.bench import add_arguments as add_bench_arguments

    bench = sub.add_parser(
        "bench",
        help="throughput, latency, memory and scale figures, each beside a same-run baseline",
        description="Prints one JSON document and writes a Markdown table (var/bench/results.md);"
        " progress on stderr. Starts its own embedded broker and Postgres unless "
        "KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are set. See docs/performance.md.",
    )
    add_bench_arguments(bench)
    bench.set_defaults(handler=_cmd_bench)

    db = sub.add_parser(
        "db",
        help="Postgres schema: migrate up or down, show the revision, create partitions",
        description="Alembic migrations of the Postgres schema. Uses DATABASE_URL; without it "
        "the embedded Postgres is started for the duration of the command.",
    )
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_upgrade = db_sub.add_parser("upgrade", help="migrate up (default: to the latest)")
    db_upgrade.add_argument("revision", nargs="?", default="head", help="target (default head)")
    db_downgrade = db_sub.add_parser(
        "downgrade", help="migrate down; `base` drops the whole schema"
    )
    db_downgrade.add_argument("revision", help="target revision: base, -1, or a revision id")
    db_sub.add_parser("current", help="print the database's revision and the latest one")
    db_partitions = db_sub.add_parser(
        "partitions", help="create the daily level_changes partitions ahead (run daily)"
    )
    db_partitions.add_argument(
        "--days", type=int, default=7, help="days ahead from today, UTC (default 7)"
    )
    db.set_defaults(handler=_cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
