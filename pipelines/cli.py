"""The ``netquality`` command: one entry point, one sub-command per face of the pipeline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.config import settings_table
from pipelines.simulate.command import participants_range, room_count, seconds


def _cmd_settings(_: argparse.Namespace) -> int:
    for env, default, doc in settings_table():
        print(f"{env:34} {default or '-':30} {doc}")
    return 0


def _checked_inputs(sources: Sequence[str], fmt: str) -> None:
    """Every input exists and is not plainly another format (see :mod:`pipelines.usage`)."""
    from pipelines.usage import check_format, head_of, input_paths

    for source, path in zip(sources, input_paths(sources), strict=True):
        check_format("stdin" if path is None else source, head_of(path), fmt)  # type: ignore[arg-type]


def _cmd_score(args: argparse.Namespace) -> int:
    from pipelines.quality import Engine, load_thresholds
    from pipelines.scorer import run
    from pipelines.usage import CommandError

    _checked_inputs([args.source], args.format)
    try:
        engine = Engine(load_thresholds(args.thresholds))
    except (OSError, ValueError, TypeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else exc
        raise CommandError(f"--thresholds {args.thresholds}: {reason}; give a JSON object of "
                           "threshold overrides") from None
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


def _cmd_calibrate(args: argparse.Namespace) -> int:
    import json

    from pipelines.calibration import report, run_all, table
    from pipelines.quality import load_thresholds

    outcomes = run_all(load_thresholds(args.thresholds))
    if args.json:
        print(json.dumps(report(outcomes), indent=1))
    else:
        print(table(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


def _cmd_worker(args: argparse.Namespace) -> int:
    from pipelines.config import Settings
    from pipelines.worker import run_worker

    run_worker(Settings.from_env(), loglevel=args.loglevel)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from pipelines.bench import run_from_args

    return run_from_args(args)


def _cmd_demo(args: argparse.Namespace) -> int:
    from rich.console import Console

    if args.offline:
        from pipelines.demo import run_demo

        return run_demo(Console())
    from pipelines.live.command import run as run_live

    return run_live(args, Console())


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
    from pipelines.config import Settings
    from pipelines.storage.sink import run_sink

    run_sink(Settings.from_env(), loglevel=args.loglevel)
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pipelines.clients.publish import print_summary, publish_sources
    from pipelines.clients.publisher import StatsPublisher
    from pipelines.config import Settings
    from pipelines.usage import CommandError, check_broker

    settings = Settings.from_env()
    _checked_inputs(args.sources or ["-"], args.format)
    servers = args.bootstrap_servers or settings.kafka_bootstrap_servers
    if not servers:
        from pipelines.runtime.demo_env import running_demo

        demo = running_demo(settings.state_dir)
        if demo is None:
            raise CommandError("set KAFKA_BOOTSTRAP_SERVERS (or --bootstrap-servers) to the "
                               "broker the worker reads from, or start `netquality demo`")
        print(f"using the running demo's broker ({demo.path})", file=sys.stderr)
        servers = demo.kafka_bootstrap_servers
    check_broker(servers)
    console = Console(stderr=True)
    publisher = StatsPublisher(
        servers, args.topic or settings.topic_stats, envelope=not args.no_envelope
    )
    try:
        summary = publish_sources(
            args.sources or ["-"], args.format, publisher, console=console,
            room_sid=args.room, region=args.region,
        )
    finally:
        publisher.close()
    print_summary(summary, console)
    return 0 if summary.ok else 1


def _cmd_ingest(args: argparse.Namespace) -> int:
    from pipelines.config import Settings
    from pipelines.ingest import NoTokensError, run_ingest
    from pipelines.runtime.service import service

    settings = Settings.from_env()
    if args.port is not None:
        settings = settings.with_overrides(ingest_port=args.port)
    if not settings.kafka_bootstrap_servers:
        print("netquality ingest: set KAFKA_BOOTSTRAP_SERVERS to the broker the worker reads "
              "from", file=sys.stderr)
        return 2
    try:
        # The worker owns the topics; the ingest only produces to them (no database).
        with service(settings, "ingest", loglevel=args.loglevel, database=False,
                     topics=False) as resolved:  # fmt: skip
            run_ingest(resolved, log_level=args.loglevel)
    except NoTokensError as exc:
        print(f"netquality ingest: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import contextlib

    from rich.console import Console

    from pipelines.analytics import QualityHistory
    from pipelines.analytics.embedded import report_state_dir, running_postgres_url
    from pipelines.analytics.report import (
        NoDataError,
        build_report,
        print_summary,
        resolve_range,
        write_report,
    )
    from pipelines.config import Settings
    from pipelines.runtime import Runtime
    from pipelines.storage import migrate

    console, errors = Console(), Console(stderr=True)
    settings = Settings.from_env()
    with contextlib.ExitStack() as stack:
        url = settings.database_url
        if not url:
            # After `netquality demo`, the demo's own Postgres (<state dir>/demo) holds the data.
            state_dir = report_state_dir(Path(settings.state_dir).absolute())
            runtime = Runtime(settings.with_overrides(state_dir=state_dir), kafka=False)
            data_dir = runtime.state_dir / "postgres"
            errors.print(f"DATABASE_URL is unset: reading the embedded Postgres under {data_dir}")
            url = running_postgres_url(data_dir)  # a demo or sink may be running it now
            if url is None:
                url = stack.enter_context(runtime).settings.database_url
        if not url:
            raise SystemExit("no database URL")
        if migrate.current(url) is None:
            errors.print("[red]the database has no netquality schema:[/red] run "
                         "`netquality db upgrade`, then the sink, before reporting")
            return 1
        history = stack.enter_context(QualityHistory(url, driver=args.driver))
        scope = "room" if args.room else "region"
        try:
            span = resolve_range(history, args.start, args.end, scope=scope,
                                 room=args.room, region=args.region)
            report = build_report(history, span, room=args.room, region=args.region)
        except NoDataError as exc:
            errors.print(f"[yellow]{exc}[/yellow]")
            return 1
        except ValueError as exc:  # a time that does not parse, an empty range
            errors.print(f"[red]{exc}[/red]")
            return 2
        print_summary(report, console)
        out_dir = args.out or settings.state_dir / "reports" / report.slug
        written = write_report(report, args.format, out_dir)
        if written:
            console.print(f"wrote {len(written)} files to {out_dir}:")
            for path in written:
                console.print(f"  {path.name}")
    return 0


def _cmd_web(args: argparse.Namespace) -> int:
    from pipelines.config import Settings
    from pipelines.web import run_web

    run_web(Settings.from_env(), loglevel=args.loglevel)
    return 0


def _cmd_alerts(args: argparse.Namespace) -> int:
    import contextlib

    from rich.console import Console

    from pipelines.config import Settings
    from pipelines.notify.tail import AlertFilter, TopicMissingError, tail_alerts
    from pipelines.usage import CommandError

    console = Console(highlight=False)
    settings = Settings.from_env()
    servers = settings.kafka_bootstrap_servers or _demo_servers(settings)
    try:
        console.print(f"[dim]following {settings.topic_alerts} on {servers} (Ctrl-C to stop)[/dim]")
        with contextlib.suppress(KeyboardInterrupt):
            tail_alerts(
                servers,
                settings.topic_alerts,
                console,
                AlertFilter(room=args.room, region=args.region, kind=args.kind),
                settings=settings,
                from_beginning=args.from_beginning,
            )
    except TopicMissingError as exc:
        raise CommandError(f"topic {exc.topic} does not exist on {servers}: start the worker "
                           "there (or `netquality demo`) first", status=1) from None
    return 0


def _demo_servers(settings: object) -> str:
    """The running demo's broker, for commands that only make sense against live data."""
    from pipelines.runtime.demo_env import running_demo
    from pipelines.usage import CommandError

    demo = running_demo(settings.state_dir)  # type: ignore[attr-defined]
    if demo is None:
        raise CommandError("no broker to read: start `netquality demo` (found by itself while "
                           "it runs) or set KAFKA_BOOTSTRAP_SERVERS")
    print(f"using the running demo's broker ({demo.path})", file=sys.stderr)
    return demo.kafka_bootstrap_servers


def _cmd_notify(args: argparse.Namespace) -> int:
    from pipelines.config import Settings
    from pipelines.notify.notifier import run_notify

    run_notify(Settings.from_env(), from_beginning=args.from_beginning, loglevel=args.loglevel)
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from pipelines.simulate.command import run

    return run(args)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("netquality")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _cmd_lab(args: argparse.Namespace) -> int:
    from pipelines.lab.command import run

    return run(args)


def _add_loglevel(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--loglevel", default="info", choices=["debug", "info", "warning"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netquality",
        description="Network Quality Levels (0-5) for video-call participants, as a stream.",
    )
    parser.add_argument("--version", action="version", version=f"netquality {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = sub.add_parser(
        "demo",
        help="the whole pipeline live on simulated calls (--offline: score bundled dumps)",
        description="Start the embedded broker and Postgres, migrate, run the worker and the "
        "sink, and feed them the simulator in real time; shows rooms by region with each "
        "participant's level. Ctrl-C (or --duration) stops everything and prints a summary.",
    )
    demo.add_argument("--offline", action="store_true",
                      help="score the bundled real browser dumps instead (no servers)")
    demo.add_argument("--duration", type=seconds, default=0,
                      help="seconds to run (0 = until Ctrl-C)")
    demo.add_argument("--rooms", type=room_count, default=12,
                      help="rooms across 3 regions (default 12)")
    demo.add_argument("--participants", type=participants_range, default=(4, 6),
                      help="per room, MIN-MAX (default 4-6)")
    demo.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    demo.add_argument("--summary-json", help="also write the summary to this JSON file")
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

    calibrate = sub.add_parser(
        "calibrate",
        help="score the calibration scenarios and print each level beside the peers' verdicts",
        description="Run every calibration scenario (loss, delay and bandwidth ladders, "
        "combined impairments, DTX, recovery, flapping, stalls, call start, the bundled real "
        "calls) through the engine and print the level it gets, the band netquality promises, "
        "and the bands LiveKit, Jitsi and Twilio give the same situation, with sources "
        "(docs/levels.md). Exit status 1 if any scenario is out of its band.",
    )
    calibrate.add_argument("--thresholds", type=Path, help="JSON file overriding thresholds")
    calibrate.add_argument("--json", action="store_true", help="one JSON document instead")
    calibrate.set_defaults(handler=_cmd_calibrate)

    worker = sub.add_parser(
        "worker",
        help="run the streaming worker (levels, rollups and alerts agents) until SIGTERM/SIGINT",
        description="Consume netquality.stats.v1, publish level changes, per-minute "
        "rollups and alerts. Configured from "
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

    web = sub.add_parser(
        "web",
        help="serve the JSON API, the live feed (SSE) and the dashboards until SIGTERM/SIGINT",
        description="Dashboards and API over Postgres and the levels topic on "
        "NETQUALITY_WEB_HOST:NETQUALITY_WEB_PORT; tokens from NETQUALITY_WEB_TOKENS(_FILE).",
    )
    _add_loglevel(web)
    web.set_defaults(handler=_cmd_web)

    alerts = sub.add_parser(
        "alerts",
        help="follow room, region and participant alerts in the terminal",
        description="Print netquality.alerts.v1 as alerts open, update and resolve "
        "(red, yellow, green). Reads without a consumer group, so it takes nothing from "
        "`netquality notify` or the sink.",
    )
    alerts.add_argument("--room", help="only this roomSid")
    alerts.add_argument("--region", help="only this region")
    alerts.add_argument(
        "--kind", choices=["room_degraded", "region_degraded", "participant_stuck"]
    )
    alerts.add_argument(
        "--from-beginning", action="store_true", help="replay the topic from its start"
    )
    alerts.set_defaults(handler=_cmd_alerts)

    notify = sub.add_parser(
        "notify",
        help="deliver alerts to webhooks (HMAC-signed, retried, dead-lettered) until SIGTERM",
        description="Consume netquality.alerts.v1 in its own consumer group and POST each alert "
        "to NETQUALITY_ALERT_WEBHOOK_URLS, signed with HMAC-SHA256 "
        "(X-Netquality-Signature over `{timestamp}.{body}`, X-Netquality-Timestamp). Failing "
        "deliveries are retried with exponential backoff and jitter, then dead-lettered; "
        "offsets are committed only after that (at least once).",
    )
    notify.add_argument(
        "--from-beginning",
        action="store_true",
        help="a new consumer group starts at the oldest alert (default: alerts from now on)",
    )
    _add_loglevel(notify)
    notify.set_defaults(handler=_cmd_notify)

    simulate = sub.add_parser(
        "simulate",
        help="simulate rooms of participants on real network traces: stats samples out",
        description="Rooms x participants across regions, each on its own network from real "
        "traces (Norway 3G, FCC, 5Gophers, OpenNetLab) with loss, RTT and jitter models, and a "
        "script of incidents, reconnects, HD switches, joins and leaves. Publishes "
        "netquality.stats.v1 samples to Kafka, or JSON lines with --output -.",
    )
    from pipelines.simulate.command import add_arguments as _simulate_arguments

    _simulate_arguments(simulate)
    simulate.set_defaults(handler=_cmd_simulate)

    lab = sub.add_parser(
        "lab",
        help="real headless Chromium calls through a network impairment relay, scored live",
        description="Two or more headless Chromium participants call each other through a "
        "userspace UDP relay that applies a network profile (loss, delay, jitter, rate caps, "
        "outages per direction); their real getStats go through the browser script and the "
        "HTTP ingest into the pipeline. Prints each participant's level beside the impairment "
        "and writes report.json, chart.png and an rtcstats dump. See docs/lab.md.",
    )
    from pipelines.lab.options import add_arguments as _lab_arguments

    _lab_arguments(lab)
    lab.set_defaults(handler=_cmd_lab)

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

    publish = sub.add_parser(
        "publish",
        help="publish stats samples (JSON lines, rtcstats or getstats dumps) to the stats topic",
        description="Validate and publish samples to netquality.stats.v1, keyed by "
        "participantSid, in batch envelopes (--no-envelope: one message per sample). Shows "
        "progress and a summary; the exit status is 1 if any sample was rejected or failed.",
    )
    publish.add_argument("sources", nargs="*", help="input files, or - for stdin (default)")
    publish.add_argument(
        "--format", choices=["samples", "rtcstats", "getstats"], default="samples",
        help="samples: netquality.stats.v1 JSON lines (default); rtcstats: jitsi "
        "rtcstats-server dumps; getstats: RTCStatsReport JSON documents",
    )
    publish.add_argument("--room", help="room id for rtcstats/getstats input (default: file name)")
    publish.add_argument("--region", default="unknown", help="region for rtcstats/getstats input")
    publish.add_argument("--topic", help="topic (default: NETQUALITY_TOPIC_STATS)")
    publish.add_argument("--bootstrap-servers", help="brokers (default: KAFKA_BOOTSTRAP_SERVERS)")
    publish.add_argument(
        "--no-envelope", action="store_true", help="one Kafka message per sample"
    )
    publish.set_defaults(handler=_cmd_publish)

    ingest = sub.add_parser(
        "ingest",
        help="HTTP ingest for browsers: POST /v1/samples onto the stats topic",
        description="Serve POST /v1/samples (bearer tokens from NETQUALITY_INGEST_TOKENS or "
        "NETQUALITY_INGEST_TOKENS_FILE) and the browser script /netquality-stats.js until "
        "SIGTERM/SIGINT.",
    )
    ingest.add_argument("--port", type=int, help="port (default: NETQUALITY_INGEST_PORT)")
    _add_loglevel(ingest)
    ingest.set_defaults(handler=_cmd_ingest)
    report = sub.add_parser(
        "report",
        help="quality history of a room, a region or everything: summary, files, charts",
        description="Summarise the quality history in Postgres over a time range: a terminal "
        "summary, the tables as CSV or Parquet with PNG charts beside them, or one HTML page. "
        "Without --from: the 24 hours up to the latest data. Times are ISO dates or times "
        "(UTC unless an offset is given), 'now', or relative like -30m, -2h, -7d. Exit status "
        "1 when the range holds no data.",
    )
    report.add_argument("--room", help="one room (roomSid)")
    report.add_argument("--region", help="one region (with --room: just a filter)")
    report.add_argument("--from", dest="start", help="start (inclusive), e.g. -2h or 2026-11-23")
    report.add_argument("--to", dest="end", help="end (exclusive; default now)")
    report.add_argument(
        "--format", choices=["table", "csv", "parquet", "html"], default="parquet",
        help="table: terminal only; csv/parquet: tables + PNG charts; html: also report.html "
        "(self-contained). Default parquet",
    )
    report.add_argument("--out", type=Path, help="output directory (default "
                        "$NETQUALITY_STATE_DIR/reports/<scope>-<name>-<range>)")
    report.add_argument("--driver", choices=["auto", "adbc", "rows"], default="auto",
                        help="auto: ADBC (columnar) when installed, else psycopg rows")
    report.set_defaults(handler=_cmd_report)
    from pipelines.access.command import add_token_parser

    add_token_parser(sub)
    return parser


_TIME_OPTIONS = ("--from", "--to")


def _attach_time_values(argv: Sequence[str]) -> list[str]:
    """``--from -2h`` -> ``--from=-2h``: argparse would take ``-2h`` for an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in _TIME_OPTIONS and arg.startswith("-"):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every failure a person can fix ends as one line (see pipelines.usage)."""
    from pipelines.usage import CommandError

    parser = build_parser()
    args = parser.parse_args(_attach_time_values(sys.argv[1:] if argv is None else argv))
    try:
        status = int(args.handler(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
    except CommandError as exc:
        print(f"netquality {args.command}: {exc}", file=sys.stderr)
        return exc.status
    except BrokenPipeError:
        # The reader went away (`netquality settings | head -1`): stop quietly, as cat does.
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        # A file or port the environment refused (permissions, a full disk, a port in use).
        where = f": {exc.filename}" if exc.filename else ""
        print(f"netquality {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
