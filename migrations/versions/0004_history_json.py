"""level_changes: stats as json (not jsonb), no participant index: half the sink's server CPU.

Revision ID: 0004_history_json
Revises: 0003_analyst_views
Create Date: 2026-11-24

Measured on the sink's write path (60,000 level events, binary COPY, Postgres 18): server CPU
per history row 22 us as it was, 20 us without the participant index, 10 us with ``stats`` as
``json`` as well; the writer went from ~40,000 to ~80,000 rows/s.

- ``stats`` is written once and only ever read whole (the web's participant views, the feed's
  resume, analysts' ``stats->'video'``, which ``json`` has too); nothing compares, indexes or
  searches it, so ``jsonb``'s parse into its binary form on every insert buys nothing. ``json``
  still validates the text and stores it as sent (the sink sends compact msgspec JSON).
- ``ix_level_changes_participant_sid_ts`` served no query: history is read by room or region
  and time (``ix_level_changes_room_sid_ts``, ``ix_level_changes_region_ts``, the daily
  partitions); per-participant steps are computed after that filter. Each index costs every
  insert ~2 us.

The downgrade restores both (rewriting the history table, so run it in a quiet hour).
"""

from alembic import op

revision = "0004_history_json"
down_revision = "0003_analyst_views"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_level_changes_participant_sid_ts", table_name="level_changes")
    op.execute("ALTER TABLE level_changes ALTER COLUMN stats DROP DEFAULT")
    op.execute("ALTER TABLE level_changes ALTER COLUMN stats TYPE json USING stats::json")
    op.execute("ALTER TABLE level_changes ALTER COLUMN stats SET DEFAULT '{}'::json")


def downgrade() -> None:
    op.execute("ALTER TABLE level_changes ALTER COLUMN stats DROP DEFAULT")
    op.execute("ALTER TABLE level_changes ALTER COLUMN stats TYPE jsonb USING stats::jsonb")
    op.execute("ALTER TABLE level_changes ALTER COLUMN stats SET DEFAULT '{}'::jsonb")
    op.create_index(
        "ix_level_changes_participant_sid_ts", "level_changes", ["participant_sid", "ts"]
    )
