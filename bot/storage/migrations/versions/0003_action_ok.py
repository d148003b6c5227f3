"""Whether the adapter carried out the action is a typed column (``ActionReport.ok``); action_result keeps the words.

The aiosqlite release's schema version 3. Older rows: the words the adapters used for success mean ok.
Revision ID: 0003, revises 0002.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DONE_WORDS = ("done", "flagged", "deleted", "warned", "timed out")


def upgrade() -> None:
    op.add_column("events", sa.Column("action_ok", sa.Integer))
    if op.get_bind().dialect.name != "sqlite":  # SQLite cannot add a constraint to an existing table
        op.create_check_constraint("events_action_ok", "events", "action_ok IN (0, 1)")
    events = sa.table("events", sa.column("action_ok", sa.Integer), sa.column("action_result", sa.Text))
    op.execute(
        events.update()
        .where(events.c.action_result.is_not(None))
        .values(action_ok=sa.case((events.c.action_result.in_(DONE_WORDS), 1), else_=0))
    )
