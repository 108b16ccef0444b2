"""Write a batch of rows to Postgres: COPY into staging, then one idempotent merge per table.

One transaction per batch, so either the whole batch is in the database or none of it; the
sink commits Kafka offsets only after that transaction commits. Replays are harmless:
history rows are inserted ``ON CONFLICT DO NOTHING`` (keyed by event id), the latest-state
tables are upserted only by newer data.

A row the database refuses permanently (a constraint or data error) must not block the rest:
the batch is bisected until the offending rows are isolated; they are returned as rejects
(for the dead-letter topic) and everything else is written.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import psycopg
from psycopg import pq, sql
from psycopg.adapt import Dumper

from pipelines.storage.rows import (
    ALERT_COLUMNS,
    CURRENT_LEVEL_COLUMNS,
    LEVEL_CHANGE_COLUMNS,
    REGION_ROLLUP_COLUMNS,
    ROOM_ROLLUP_COLUMNS,
)

log = logging.getLogger(__name__)

Row = tuple[Any, ...]


@dataclass(frozen=True)
class TableMerge:
    """How one table is merged: history tables insert-if-absent, latest-state tables upsert."""

    table: str
    columns: tuple[str, ...]
    conflict: tuple[str, ...]
    update: bool
    """Upsert (latest state) rather than insert-if-absent (history)."""
    newer_column: str | None = None
    """With ``update``: only replace a row when this column is not older."""
    final_status: str | None = None
    """With ``newer_column``: a status a row never leaves (a resolved alert stays resolved)."""

    def copy_sql(self, into: str) -> sql.Composed:
        return sql.SQL("COPY {t} ({cols}) FROM STDIN (FORMAT BINARY)").format(
            t=sql.Identifier(into), cols=sql.SQL(", ").join(map(sql.Identifier, self.columns))
        )

    def merge_sql(self) -> sql.Composed:
        """``INSERT .. SELECT`` from the staging copy; an upsert rewrites a row only when the
        incoming one is not older *and* differs, so replays leave no new row versions."""
        cols = sql.SQL(", ").join(map(sql.Identifier, self.columns))
        stage = sql.Identifier(f"stage_{self.table}")
        target = sql.Identifier(self.table)
        conflict = sql.SQL(", ").join(map(sql.Identifier, self.conflict))
        if not self.update:
            action = sql.SQL("DO NOTHING")
        else:
            changing = [c for c in self.columns if c not in self.conflict]
            assignments = [
                sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in changing
            ]
            if "updated_at" not in self.columns:  # alerts carry their own
                assignments.append(sql.SQL("updated_at = now()"))
            stored = sql.SQL(", ").join(
                sql.SQL("{t}.{c}").format(t=target, c=sql.Identifier(c)) for c in changing
            )
            incoming = sql.SQL(", ").join(
                sql.SQL("EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in changing
            )
            condition = sql.SQL("({}) IS DISTINCT FROM ({})").format(stored, incoming)
            if self.newer_column:
                condition = sql.SQL("{t}.{c} <= EXCLUDED.{c} AND {rest}").format(
                    t=target, c=sql.Identifier(self.newer_column), rest=condition
                )
            if self.final_status:  # a row in its final status is never replaced by another
                final = sql.SQL("({t}.status <> {f} OR EXCLUDED.status = {f})").format(
                    t=target, f=sql.Literal(self.final_status)
                )
                condition = sql.SQL("{} AND {}").format(final, condition)
            action = sql.SQL("DO UPDATE SET {} WHERE {}").format(
                sql.SQL(", ").join(assignments), condition
            )
        return sql.SQL(
            "INSERT INTO {t} ({cols}) SELECT {cols} FROM {s} ON CONFLICT ({k}) {a}"
        ).format(t=target, cols=cols, s=stage, k=conflict, a=action)


LEVEL_CHANGES = TableMerge("level_changes", LEVEL_CHANGE_COLUMNS, ("event_id", "ts"), False)
CURRENT_LEVELS = TableMerge(
    "current_levels", CURRENT_LEVEL_COLUMNS, ("participant_sid",), True, newer_column="ts"
)
ALERTS = TableMerge(
    "alerts", ALERT_COLUMNS, ("alert_id",), True, newer_column="updated_at",
    final_status="resolved",
)  # fmt: skip

# A minute's latest emission is its full corrected aggregate: last write wins.
ROOM_ROLLUPS = TableMerge("room_rollups", ROOM_ROLLUP_COLUMNS, ("room_sid", "minute"), True)
REGION_ROLLUPS = TableMerge("region_rollups", REGION_ROLLUP_COLUMNS, ("region", "minute"), True)


_BY_TABLE = {m.table: m for m in (LEVEL_CHANGES, CURRENT_LEVELS, ALERTS, ROOM_ROLLUPS,
                                  REGION_ROLLUPS)}  # fmt: skip

DeadLetterCount = tuple[int, int, Any, str, str]
"""(partition, offset, hour, source topic, error code) of one dead-letter record."""


@dataclass
class Batch:
    """Rows per table (already deduplicated by key) and keys to delete from latest-state tables,
    plus dead letters to count (exactly once, see :meth:`BatchWriter._count_dead_letters`)."""

    rows: dict[TableMerge, list[Row]] = field(default_factory=dict)
    deletes: dict[TableMerge, list[Any]] = field(default_factory=dict)
    deadletter_topic: str = ""
    dead_letters: list[DeadLetterCount] = field(default_factory=list)

    def add(self, merge: TableMerge, row: Row) -> None:
        self.rows.setdefault(merge, []).append(row)

    def __len__(self) -> int:
        return sum(len(r) for r in self.rows.values()) + sum(len(k) for k in self.deletes.values())


@dataclass
class Reject:
    """A row the database refused permanently, with its reason."""

    table: str
    row: Row
    code: str
    message: str


def is_transient(exc: BaseException) -> bool:
    """Connection loss, shutdown, overload, serialization conflicts: retry the whole batch."""
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        sqlstate = getattr(exc, "sqlstate", None) or ""
        return not sqlstate.startswith(("22", "23"))
    sqlstate = getattr(exc, "sqlstate", None) or ""
    return sqlstate.startswith(("08", "40", "53", "57"))


class BatchWriter:
    """Writes :class:`Batch`es over one psycopg connection (the caller reconnects on loss)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        conn.adapters.register_dumper(None, JsonTextBinaryDumper)
        conn.adapters.register_dumper(None, JsonTextDumper)
        self._staged: set[str] = set()
        self._types: dict[str, list[int]] = {}
        self.replayed_batches = 0
        """History batches that held a row already stored (merged through staging)."""

    def write(self, batch: Batch) -> list[Reject]:
        """Write the batch in one transaction; on a permanent error isolate the bad rows."""
        for merge in batch.rows:
            self._ensure_stage(merge)
            self._ensure_types(merge)
        try:
            with self.conn.transaction():
                for merge, rows in batch.rows.items():
                    self._merge(merge, rows)
                for merge, keys in batch.deletes.items():
                    self._delete(merge, keys)
                self._count_dead_letters(batch.deadletter_topic, batch.dead_letters)
            return []
        except psycopg.Error as exc:
            if is_transient(exc):
                raise
            if self._column_types_changed():
                log.warning("column types changed under the sink (a migration); writing again")
                return self.write(batch)
            log.warning("batch refused (%s); isolating the rows at fault", exc.sqlstate)
        rejects: list[Reject] = []
        for merge, rows in batch.rows.items():
            rejects.extend(self._bisect(merge, rows))
        with self.conn.transaction():
            for merge, keys in batch.deletes.items():
                self._delete(merge, keys)
            self._count_dead_letters(batch.deadletter_topic, batch.dead_letters)
        return rejects

    def _bisect(self, merge: TableMerge, rows: Sequence[Row]) -> list[Reject]:
        try:
            with self.conn.transaction():
                self._merge(merge, rows)
            return []
        except psycopg.Error as exc:
            if is_transient(exc):
                raise
            if len(rows) == 1:
                return [Reject(merge.table, rows[0], "db_rejected", f"{exc.sqlstate}: {exc}")]
        middle = len(rows) // 2
        return self._bisect(merge, rows[:middle]) + self._bisect(merge, rows[middle:])

    def _merge(self, merge: TableMerge, rows: Sequence[Row]) -> None:
        if not rows:
            return
        types = self._types[merge.table]
        if not merge.update and self._copy_if_all_new(merge, rows, types):
            return
        with self.conn.cursor() as cur:
            _copy_rows(cur, merge.copy_sql(f"stage_{merge.table}"), rows, types)
            cur.execute(merge.merge_sql())
            cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(f"stage_{merge.table}")))

    def _copy_if_all_new(self, merge: TableMerge, rows: Sequence[Row], types: list[int]) -> bool:
        """The fast path for history: COPY straight into the table, inside a savepoint.

        New rows are the normal case, and then this is one COPY, with no staging copy and no
        ``INSERT .. SELECT``. A replayed row makes the COPY fail on the primary key (at that
        row, so a fully replayed batch fails at once); the savepoint undoes the partial COPY
        and the caller merges the batch through staging with ``ON CONFLICT DO NOTHING``.
        """
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                _copy_rows(cur, merge.copy_sql(merge.table), rows, types)
            return True
        except psycopg.errors.UniqueViolation:
            self.replayed_batches += 1
            return False

    def _count_dead_letters(self, topic: str, letters: Sequence[DeadLetterCount]) -> None:
        """Add dead letters to the hourly counts, each record once whatever replays it.

        Counting is not idempotent, so the next offset to count per partition is kept in
        ``sink_offsets`` and moved in this same transaction: a record below it was counted.
        """
        if not letters:
            return
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT partition, next_offset FROM sink_offsets WHERE topic = %s FOR UPDATE",
                (topic,),
            )
            applied = dict(cur.fetchall())
            counts: dict[tuple[Any, str, str], int] = {}
            next_offsets: dict[int, int] = {}
            for partition, offset, hour, source, code in letters:
                if offset < applied.get(partition, 0):
                    continue
                counts[(hour, source, code)] = counts.get((hour, source, code), 0) + 1
                next_offsets[partition] = max(next_offsets.get(partition, 0), offset + 1)
            cur.executemany(
                "INSERT INTO deadletter_counts (hour, topic, code, count) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (hour, topic, code)"
                " DO UPDATE SET count = deadletter_counts.count + EXCLUDED.count",
                [(*key, n) for key, n in counts.items()],
            )
            cur.executemany(
                "INSERT INTO sink_offsets (topic, partition, next_offset) VALUES (%s, %s, %s)"
                " ON CONFLICT (topic, partition) DO UPDATE SET next_offset ="
                " GREATEST(sink_offsets.next_offset, EXCLUDED.next_offset), updated_at = now()",
                [(topic, partition, n) for partition, n in next_offsets.items()],
            )

    def _ensure_types(self, merge: TableMerge) -> None:
        """The columns' type oids, as binary COPY needs them (asked once per connection)."""
        if merge.table in self._types:
            return
        found = dict(
            self.conn.execute(
                "SELECT attname, atttypid FROM pg_attribute"
                " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (merge.table,),
            ).fetchall()
        )
        self._types[merge.table] = [int(found[c]) for c in merge.columns]

    def _column_types_changed(self) -> bool:
        """Whether a migration changed a column type since the oids were cached (say
        ``stats`` json <-> jsonb): binary COPY would then send the old type's format and
        every row would be refused. If so, forget the oids and the staging tables."""
        cached = dict(self._types)
        self._types.clear()
        for table in cached:
            self._ensure_types(_BY_TABLE[table])
        if self._types == cached:
            return False
        for stage in self._staged:
            self.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(stage)))
        self._staged.clear()
        self._types.clear()
        return True

    def _ensure_stage(self, merge: TableMerge) -> None:
        """Create the session's staging table once, outside any batch transaction (a failed
        batch must not roll it back)."""
        stage = f"stage_{merge.table}"
        if stage in self._staged:
            return
        self.conn.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {s} (LIKE {t} INCLUDING DEFAULTS)").format(
                s=sql.Identifier(stage), t=sql.Identifier(merge.table)
            )
        )
        self._staged.add(stage)

    def _delete(self, merge: TableMerge, keys: Sequence[Any]) -> None:
        if not keys:
            return
        key = merge.conflict[0]
        with self.conn.cursor() as cur:
            cur.execute(
                sql.SQL("DELETE FROM {t} WHERE {k} = ANY(%s)").format(
                    t=sql.Identifier(merge.table), k=sql.Identifier(key)
                ),
                (list(keys),),
            )

    def reset(self) -> None:
        """Forget staging tables (after a reconnect they no longer exist)."""
        self._staged.clear()
        self._types.clear()


JSONB_OID = 3802
JSON_OID = 114


class JsonTextBinaryDumper(Dumper):
    """jsonb in binary COPY from JSON text (our rows carry it ready, see ``rows.py``).

    Registered by oid only, so it serves ``Copy.set_types`` and nothing else. Binary COPY
    formats a row in about half the client time of text COPY (no escaping, no number and
    timestamp text) and spares the server parsing those fields."""

    format = pq.Format.BINARY
    oid = JSONB_OID

    def dump(self, obj: Any) -> bytes:
        text = obj if isinstance(obj, str) else _json.encode(obj).decode()
        return b"\x01" + text.encode()  # jsonb binary format version 1, then the text


class JsonTextDumper(Dumper):
    """json (``level_changes.stats``) in binary COPY from JSON text: the binary form of json
    is its text, which the server validates and stores as sent (no jsonb parse)."""

    format = pq.Format.BINARY
    oid = JSON_OID

    def dump(self, obj: Any) -> bytes:
        return obj.encode() if isinstance(obj, str) else _json.encode(obj)


_json = msgspec.json.Encoder()


def _copy_rows(
    cur: psycopg.Cursor[Any], statement: sql.Composed, rows: Sequence[Row], types: list[int]
) -> None:
    """Binary COPY of the rows; JSON columns arrive as JSON text (see ``rows.py``)."""
    with cur.copy(statement) as copy:
        copy.set_types(types)
        write_row = copy.write_row
        for row in rows:
            write_row(row)
