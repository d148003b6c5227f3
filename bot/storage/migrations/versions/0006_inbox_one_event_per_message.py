"""Reliability: the intake inbox; one event per message (an edit updates it); each action's state, for retries.

Older releases logged every edit of a message as one more event: those are kept, all but the first under a marked
message id (``<id>#<event id>``), before the (platform, chat, message) key becomes unique.
Revision ID: 0006, revises 0005.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbox",
        sa.Column("id", ID, primary_key=True),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("chat_id", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_until", sa.Float),
        sa.Column("done_at", sa.Float),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("platform", "key", name="inbox_key"),
    )
    op.create_index("inbox_pending", "inbox", ["platform", "done_at", "id"])
    op.create_index("inbox_by_chat", "inbox", ["platform", "chat_id", "seq"])
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("revision", sa.BigInteger, nullable=False, server_default="0"))
        batch.add_column(sa.Column("text_hash", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("author_name", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("action_state", sa.Text, nullable=False, server_default="settled"))
        batch.add_column(sa.Column("action_attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("action_due_at", sa.Float))
    events = sa.table(
        "events",
        sa.column("id", ID),
        sa.column("platform", sa.Text),
        sa.column("chat_id", sa.Text),
        sa.column("message_id", sa.Text),
    )
    first = sa.select(sa.func.min(events.c.id)).group_by(events.c.platform, events.c.chat_id, events.c.message_id)
    op.execute(
        events.update()
        .where(events.c.id.not_in(first.scalar_subquery()))
        .values(message_id=events.c.message_id + "#" + sa.cast(events.c.id, sa.Text))
    )
    op.create_index("events_by_message", "events", ["platform", "chat_id", "message_id"], unique=True)
    op.create_index(
        "events_due",
        "events",
        ["platform", "action_state", "action_due_at"],
        sqlite_where=sa.text("action_state != 'settled'"),
        postgresql_where=sa.text("action_state != 'settled'"),
    )
