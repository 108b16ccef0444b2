"""The start-up every long-running command shares: logging, endpoints, topics, schema, signals.

``netquality sink``, ``notify``, ``web``, ``worker``, ``demo`` (and the lab) each need the same
steps before their own loop: configure logging, resolve the broker and Postgres (embedded
servers where the settings leave them unset, see :class:`Runtime`), create the missing topics,
bring the schema where the service needs one; and, for asyncio services, a stop event set by
SIGTERM/SIGINT. One function each, so a step cannot be forgotten by one command.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from pipelines.config import Settings
from pipelines.runtime import Runtime

Schema = Literal["none", "upgrade", "embedded", "current"]
"""What a service needs of the database schema: nothing; always migrated to the latest (the
demo); migrated when the database is embedded (the web faces); migrated when embedded and
refused when an external one is behind (the sink writes every table)."""


def prepare(runtime: Runtime, *, topics: bool = True, schema: Schema = "none") -> Settings:
    """Start ``runtime`` (embedded servers for unset endpoints), create the topics, bring the
    schema; returns the resolved settings."""
    resolved = runtime.start()
    if topics:
        from pipelines.streaming.topics import ensure_topics  # noqa: PLC0415

        ensure_topics(resolved)  # logs what it created
    if schema != "none":
        from pipelines.storage import migrate  # noqa: PLC0415

        url = resolved.database_url
        assert url, "a schema needs a database: Runtime(database=True)"
        embedded = not runtime.requested.database_url
        if schema == "upgrade" or embedded:
            migrate.upgrade(url)
        elif schema == "current" and migrate.current(url) != migrate.head():
            raise SystemExit(
                "the database schema is not at the latest revision: run `netquality db upgrade`"
            )
    return resolved


@contextmanager
def service(
    settings: Settings,
    name: str,
    *,
    loglevel: str | None = None,
    database: bool = True,
    topics: bool = True,
    schema: Schema = "none",
    find_demo: bool = False,
    metrics: bool = False,
) -> Iterator[Settings]:
    """Logging (when ``loglevel`` is given), endpoints, topics, schema and the Prometheus
    endpoint (``metrics``) for the service ``name``; yields the resolved settings and stops
    the embedded servers after."""
    if loglevel is not None:
        from pipelines.observability import configure_logging  # noqa: PLC0415

        configure_logging(loglevel, settings.log_format, name)
    runtime = Runtime(settings, database=database, find_demo=find_demo)
    try:
        resolved = prepare(runtime, topics=topics, schema=schema)
        if metrics:
            from pipelines.observability import serve_metrics  # noqa: PLC0415

            serve_metrics(resolved.metrics_port)
        yield resolved
    finally:
        runtime.close()


def stop_on_signals() -> asyncio.Event:
    """An event SIGTERM/SIGINT set, for the running loop's service to stop cleanly on."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
