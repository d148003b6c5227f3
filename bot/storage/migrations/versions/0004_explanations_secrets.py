"""Each event keeps the words that drove its top label (JSON of ``bot.core.explain.Explanation``); secrets the bot
generates on first start (the web dashboard's signing key) have a table.

Revision ID: 0004, revises 0003.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("explanation", sa.Text))
    op.create_table(
        "secrets",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
