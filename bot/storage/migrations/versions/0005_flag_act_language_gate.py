"""Two operating points per label, and the language gate.

A chat's stored threshold override ``{label: x}`` becomes ``{label: {"flag": x, "act": x}}`` (an old override meant
both); chats may turn off the language gate (on by default). Revision ID: 0005, revises 0004.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("chat_settings", sa.Column("language_gate", sa.Integer, nullable=False, server_default="1"))
    if op.get_bind().dialect.name != "sqlite":  # SQLite cannot add a constraint to an existing table
        op.create_check_constraint("chat_settings_language_gate", "chat_settings", "language_gate IN (0, 1)")
    table = sa.table(
        "chat_settings", sa.column("platform", sa.Text), sa.column("chat_id", sa.Text), sa.column("thresholds", sa.Text)
    )
    bind = op.get_bind()
    for platform, chat_id, stored in bind.execute(sa.select(table.c.platform, table.c.chat_id, table.c.thresholds)):
        old = json.loads(stored or "{}")
        new = {
            label: value if isinstance(value, dict) else {"act": value, "flag": value} for label, value in old.items()
        }
        if new != old:
            bind.execute(
                table.update()
                .where(table.c.platform == platform, table.c.chat_id == chat_id)
                .values(thresholds=json.dumps(new, sort_keys=True))
            )
