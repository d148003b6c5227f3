"""Admins review events (feedback clears strikes), chats may store whole messages, events keep their thresholds.

The aiosqlite release's schema version 2. Revision ID: 0002, revises 0001.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("event_id", ID, sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("actor_id", sa.Text, nullable=False),
        sa.Column("correct", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.CheckConstraint("correct IN (0, 1)", name="feedback_correct"),
    )
    op.add_column("strikes", sa.Column("cleared_at", sa.Float))
    op.add_column("chat_settings", sa.Column("store_text", sa.Integer, nullable=False, server_default="0"))
    op.add_column("events", sa.Column("thresholds", sa.Text, nullable=False, server_default="{}"))
    if op.get_bind().dialect.name != "sqlite":  # SQLite cannot add a constraint to an existing table
        op.create_check_constraint("chat_settings_store_text", "chat_settings", "store_text IN (0, 1)")
