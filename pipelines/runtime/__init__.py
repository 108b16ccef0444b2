"""Where the endpoints come from: the one place that decides and starts embedded servers.

``KAFKA_BOOTSTRAP_SERVERS`` / ``DATABASE_URL`` set means "use that"; unset means "start the
embedded Tansu broker / Postgres under ``state_dir``", or, for the commands that ask with
``find_demo=True``, "use the running ``netquality demo``'s" (see :mod:`.demo_env`). Every
service goes through :class:`Runtime`, so no other module spawns processes::

    with Runtime(Settings.from_env()) as rt:
        run_worker(rt.settings)  # rt.settings has real endpoints filled in
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import TracebackType

from pipelines.config import Settings
from pipelines.runtime.broker import EmbeddedBroker
from pipelines.runtime.demo_env import DemoEndpoints, running_demo
from pipelines.runtime.postgres import EmbeddedPostgres

log = logging.getLogger(__name__)

__all__ = ["EmbeddedBroker", "EmbeddedPostgres", "Runtime", "libpq_url", "sqlalchemy_url"]


def sqlalchemy_url(url: str) -> str:
    """``postgresql://`` (what operators write) as a SQLAlchemy URL on the psycopg 3 driver.

    SQLAlchemy's bare ``postgresql://`` means psycopg2, which the stack does not install.
    """
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql://",
                   "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def libpq_url(url: str) -> str:
    """The same URL without a SQLAlchemy driver suffix, for ``psycopg.connect``."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}" if sep else url


class Runtime:
    """Resolved endpoints, with embedded servers started only for the unset ones.

    ``kafka`` / ``database`` say which endpoints the caller needs at all (the offline scorer
    needs neither; the worker needs no database). After ``start()``, ``settings`` carries the
    bootstrap servers and a SQLAlchemy ``postgresql+psycopg://`` database URL. With
    ``find_demo`` a running demo's servers are used before starting empty ones of its own
    (for commands that look at data: alerts, simulate, web, db; not worker or sink, which
    would join the demo's own consumer groups).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        kafka: bool = True,
        database: bool = True,
        find_demo: bool = False,
    ) -> None:
        self.requested = settings if settings is not None else Settings.from_env()
        self.settings = self.requested
        self.want_kafka = kafka
        self.want_database = database
        self.find_demo = find_demo
        self.broker: EmbeddedBroker | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.demo: DemoEndpoints | None = None

    @property
    def state_dir(self) -> Path:
        return Path(self.requested.state_dir).absolute()

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def start(self) -> Settings:
        """Start what is missing; return the settings with real endpoints."""
        s = self.requested
        bootstrap, db_url = s.kafka_bootstrap_servers, s.database_url
        missing = (self.want_kafka and not bootstrap) or (self.want_database and not db_url)
        if self.find_demo and missing:
            self.demo = running_demo(self.state_dir)
        if self.demo is not None:
            bootstrap = bootstrap or self.demo.kafka_bootstrap_servers
            db_url = db_url or self.demo.database_url
            print(f"using the running demo's servers ({self.demo.path}; set "
                  "KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL to use others)", file=sys.stderr)
        try:
            if self.want_kafka and not bootstrap:
                self.broker = EmbeddedBroker(self.log_dir)
                self.broker.start()
                bootstrap = self.broker.bootstrap_servers
            if self.want_database and not db_url:
                self.postgres = EmbeddedPostgres(self.state_dir / "postgres", self.log_dir)
                self.postgres.start()
                db_url = self.postgres.url
        except BaseException:
            self.close()
            raise
        self.settings = s.with_overrides(
            kafka_bootstrap_servers=bootstrap,
            database_url=sqlalchemy_url(db_url) if db_url else None,
        )
        log.info(
            "endpoints: kafka=%s%s database=%s%s",
            bootstrap, " (embedded)" if self.broker else "",
            self.settings.database_url, " (embedded)" if self.postgres else "",
        )
        return self.settings

    def close(self) -> None:
        """Stop whatever this runtime started (external servers are left alone)."""
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
        if self.broker is not None:
            self.broker.stop()
            self.broker = None

    def __enter__(self) -> Runtime:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
