"""``netquality demo`` (live) from the command line: embedded servers, signals, the summary."""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import signal
from pathlib import Path

from rich.console import Console

from pipelines.config import Settings
from pipelines.live.demo import LiveDemo, summary_table
from pipelines.runtime import Runtime
from pipelines.runtime.demo_env import DemoEndpoints, write_env
from pipelines.runtime.process import free_port, port_open
from pipelines.runtime.service import prepare


def with_demo_web(settings: Settings) -> tuple[Settings, str]:
    """Fresh random tokens for this run's web API and ingest, and a free port if 8000 is taken.

    The dashboard address carries the token once (``?token=``); the web service trades it for
    an HttpOnly cookie and redirects, so it does not linger in the address bar.
    """
    web_token, ingest_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    port = settings.web_port if not port_open("127.0.0.1", settings.web_port) else free_port()
    token_file = Path(settings.state_dir) / "ingest-token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(ingest_token + "\n")
    token_file.chmod(0o600)
    resolved = settings.with_overrides(
        web_host="127.0.0.1", web_port=port, web_tokens=f"{web_token}=*",
        ingest_tokens=ingest_token,
    )
    return resolved, f"http://127.0.0.1:{port}/?token={web_token}"


def _shown(path: Path) -> str:
    """A path as a person would type it: relative when under the working directory."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def run(args: argparse.Namespace, console: Console) -> int:
    """Start everything in a fresh ``<state dir>/demo``, run, stop cleanly, print the summary."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    settings = Settings.from_env()
    if settings.kafka_bootstrap_servers or settings.database_url:
        console.print("[yellow]the demo always runs its own embedded broker and Postgres; "
                      "KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are ignored[/]")
    state_dir = Path(settings.state_dir).absolute() / "demo"
    shutil.rmtree(state_dir, ignore_errors=True)  # the demo's own scratch data only
    settings = settings.with_overrides(
        kafka_bootstrap_servers=None, database_url=None, state_dir=state_dir
    )
    runtime = Runtime(settings)
    card = state_dir / "env"
    demo: LiveDemo | None = None

    def on_signal(*_: object) -> None:
        if demo is None:
            raise KeyboardInterrupt
        if demo.stop.is_set():
            demo.abort.set()  # a second Ctrl-C: stop waiting for the drain
        demo.stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        starting = "starting the embedded broker and Postgres, migrating"
        if not console.is_terminal:
            console.print(starting)  # the spinner below draws nothing into a pipe
        with console.status(starting):
            resolved = prepare(runtime, schema="upgrade")
        resolved, dashboard = with_demo_web(resolved)
        demo = LiveDemo(resolved, console, rooms=args.rooms, participants=args.participants,
                        seed=args.seed, log_dir=runtime.log_dir)
        demo.state.dashboard = dashboard
        write_env(card, DemoEndpoints(resolved.kafka_bootstrap_servers or "",
                                      resolved.database_url or "", os.getpid(), card, dashboard))
        # Short lines (an 80-column terminal); addresses whole, so they can be copied.
        for line in (
            f"[bold]netquality demo[/]: {len(demo.scenario.rooms)} rooms, "
            f"{len(demo.scenario.participants)} participants; an incident in "
            f"{demo.scenario.incident_room.removeprefix('RM-')} at 20-60 s. Ctrl-C stops.",
            f"[bold]Dashboards[/]: {dashboard}",
            f"[bold]Servers[/]: KAFKA_BOOTSTRAP_SERVERS={resolved.kafka_bootstrap_servers}",
            f"         DATABASE_URL={resolved.database_url}",
            "Other netquality commands (try `netquality alerts`) find this demo by themselves;",
            f"other tools: [bold]source {_shown(card)}[/]",
            f"Logs: {_shown(runtime.log_dir)}. Browser ingest: /ingest/v1/samples, token in "
            f"{_shown(resolved.state_dir)}/ingest-token",
        ):
            console.print(line, soft_wrap=True)
        summary = demo.run(args.duration or None, live=console.is_terminal)
    finally:
        card.unlink(missing_ok=True)
        runtime.close()
    console.print(summary_table(summary))
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2))
    return 0 if summary["consistent"] else 1
