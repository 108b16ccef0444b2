"""Postgres query results as polars DataFrames: columnar (ADBC) when installed, rows otherwise.

Why ADBC: ``adbc-driver-postgresql`` reads results with ``COPY ... TO STDOUT (FORMAT binary)``
straight into Arrow buffers, which polars adopts without copying; the row path builds one
Python tuple per row and one Python object per value first. ``benchmarks/analytics.py``
measures both on the same query. connectorx, the other columnar reader polars knows, takes a
query string only (no bound parameters), so it is not used: every value reaches the SQL here
as a bound parameter.

Queries are written once with ``:name`` placeholders; :func:`bind` turns them into psycopg's
``%(name)s`` or libpq's ``$n``. Each query also declares its output schema, so both paths give
the same dtypes, also for empty results.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal

import polars as pl

from pipelines.runtime import libpq_url

Driver = Literal["auto", "adbc", "rows"]
Schema = Mapping[str, pl.DataType | type[pl.DataType]]

_PLACEHOLDER = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
UTC_DATETIME = pl.Datetime("us", "UTC")


def adbc_available() -> bool:
    """Whether the columnar driver (and pyarrow, which it returns) can be imported."""
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401, PLC0415
        import pyarrow  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def bind(query: str, params: Mapping[str, Any], style: Literal["psycopg", "libpq"]) -> tuple[
    str, Any
]:
    """``:name`` placeholders -> the driver's style, and the parameters in the matching shape.

    ``::type`` casts are left alone. A placeholder without a value is an error (a typo in a
    query must not silently bind NULL).
    """
    names: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise KeyError(f"query parameter :{name} has no value")
        if style == "psycopg":
            return f"%({name})s"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    text = _PLACEHOLDER.sub(replace, query.replace("%", "%%") if style == "psycopg" else query)
    if style == "psycopg":
        return text, dict(params)
    return text, tuple(params[n] for n in names)


def conform(frame: pl.DataFrame, schema: Schema) -> pl.DataFrame:
    """Cast ``frame`` to ``schema`` (names and order); an empty result gets the right dtypes."""
    if frame.width == 0 or frame.height == 0:
        return pl.DataFrame(schema=dict(schema))
    missing = [name for name in schema if name not in frame.columns]
    if missing:
        raise ValueError(f"query did not return columns {missing}")
    return frame.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


class QueryRunner:
    """One open connection that returns DataFrames; a context manager that closes it.

    ``driver="auto"`` takes ADBC when it is installed and falls back to psycopg rows otherwise;
    ``"adbc"`` insists (ImportError if missing); ``"rows"`` forces the row path. The session
    runs in UTC, so timestamps and ``date_trunc`` buckets are UTC whatever the server's
    setting.
    """

    def __init__(self, database_url: str, driver: Driver = "auto") -> None:
        if driver not in ("auto", "adbc", "rows"):
            raise ValueError(f"unknown driver {driver!r}: auto, adbc or rows")
        if driver == "auto":
            driver = "adbc" if adbc_available() else "rows"
        self.driver: Literal["adbc", "rows"] = driver
        self.dsn = libpq_url(database_url)
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None:
            if self.driver == "adbc":
                import adbc_driver_postgresql.dbapi as adbc  # noqa: PLC0415

                self._conn = adbc.connect(self.dsn, autocommit=True)
                with self._conn.cursor() as cur:
                    cur.execute("SET TIME ZONE 'UTC'")
            else:
                import psycopg  # noqa: PLC0415

                self._conn = psycopg.connect(self.dsn, autocommit=True)
                self._conn.execute("SET TIME ZONE 'UTC'")
        return self._conn

    def frame(
        self, query: str, params: Mapping[str, Any] | None = None, schema: Schema | None = None
    ) -> pl.DataFrame:
        """Run ``query`` with bound ``params``; the result as a DataFrame (cast to ``schema``)."""
        params = params or {}
        conn = self._connection()
        if self.driver == "adbc":
            text, values = bind(query, params, "libpq")
            with conn.cursor() as cur:
                cur.execute(text, values if values else None)
                frame = pl.from_arrow(cur.fetch_arrow_table())
            assert isinstance(frame, pl.DataFrame)
        else:
            text, values = bind(query, params, "psycopg")
            with conn.cursor() as cur:
                cur.execute(text, values)
                names = [d.name for d in cur.description or ()]
                rows = cur.fetchall()
            frame = pl.DataFrame(rows, schema=names, orient="row", infer_schema_length=None)
        return frame if schema is None else conform(frame, schema)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> QueryRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
