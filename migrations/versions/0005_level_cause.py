"""level_changes and current_levels: the level event's cause (whose network), as json.

Revision ID: 0005_level_cause
Revises: 0004_history_json
Create Date: 2026-12-07

A subscriber whose received trouble is its publisher's uplink keeps its level, and its event
says whose uplink it was (``cause``, docs/levels.md, Whose network). Stored beside the level
so that the dashboards still say "limited by PA02's uplink" after a reload (they read the
current state and the history from here) and analysts can count it. ``level_changes.cause``
is ``json`` like ``stats`` (written once, read whole); ``current_levels.cause`` is ``jsonb``
because the sink's upsert compares rows (``IS DISTINCT FROM``) and ``json`` has no equality; NULL for the events without one, which is almost all of them, so
adding the column rewrites nothing and costs an insert nothing.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSON, JSONB

revision = "0005_level_cause"
down_revision = "0004_history_json"
branch_labels = None
depends_on = None

_COMMENT = (
    'Whose network: {"kind": "upstream", "participantSid", "trackSid"} of the publisher whose'
    " uplink the room attributed (docs/levels.md); NULL when none (migration 0005)"
)


def upgrade() -> None:
    op.add_column("level_changes", sa.Column("cause", JSON(), nullable=True, comment=_COMMENT))
    op.add_column("current_levels", sa.Column("cause", JSONB(), nullable=True, comment=_COMMENT))


def downgrade() -> None:
    for table in ("current_levels", "level_changes"):
        op.drop_column(table, "cause")
