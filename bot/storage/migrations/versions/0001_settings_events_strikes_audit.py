"""Settings, the moderation log, strikes and the admin audit log (the aiosqlite release's schema version 1).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "chat_settings",
        sa.Column("platform", sa.Text, primary_key=True),
        sa.Column("chat_id", sa.Text, primary_key=True),
        sa.Column("model", sa.Text),
        sa.Column("thresholds", sa.Text, nullable=False, server_default="{}"),
        sa.Column("action", sa.Text, nullable=False, server_default="warn"),
        sa.Column("acting_labels", sa.Text, nullable=False),
        sa.Column("strike_limit", sa.Integer, nullable=False, server_default="3"),
        sa.Column("strike_window_seconds", sa.Integer, nullable=False, server_default="86400"),
        sa.Column("timeout_seconds", sa.Integer, nullable=False, server_default="600"),
        sa.Column("exempt_users", sa.Text, nullable=False, server_default="[]"),
        sa.Column("exempt_roles", sa.Text, nullable=False, server_default="[]"),
        sa.Column("log_channel", sa.Text),
        sa.Column("enabled", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.CheckConstraint("action IN ('flag', 'delete', 'warn', 'timeout')", name="chat_settings_action"),
        sa.CheckConstraint("strike_limit >= 0", name="chat_settings_strike_limit"),
        sa.CheckConstraint("strike_window_seconds > 0", name="chat_settings_window"),
        sa.CheckConstraint("timeout_seconds > 0", name="chat_settings_timeout"),
        sa.CheckConstraint("enabled IN (0, 1)", name="chat_settings_enabled"),
    )
    op.create_table(
        "events",
        sa.Column("id", ID, primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("chat_id", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("author_id", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("scores", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("flagged", sa.Text, nullable=False, server_default="[]"),
        sa.Column("triggered", sa.Text, nullable=False, server_default="[]"),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("text_stored", sa.Integer, nullable=False, server_default="0"),
        sa.Column("timeout_seconds", sa.Integer, nullable=False, server_default="0"),
        sa.Column("action_result", sa.Text),
        sa.CheckConstraint("text_stored IN (0, 1)", name="events_text_stored"),
    )
    op.create_index("events_by_chat", "events", ["platform", "chat_id", "created_at"])
    op.create_table(
        "strikes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("event_id", ID, sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False, unique=True),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("chat_id", sa.Text, nullable=False),
        sa.Column("author_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("strikes_by_author", "strikes", ["platform", "chat_id", "author_id", "created_at"])
    op.create_table(
        "audit_log",
        sa.Column("id", ID, primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("platform", sa.Text, nullable=False),
        sa.Column("chat_id", sa.Text, nullable=False),
        sa.Column("actor_id", sa.Text, nullable=False),
        sa.Column("setting", sa.Text, nullable=False),
        sa.Column("old_value", sa.Text),
        sa.Column("new_value", sa.Text),
    )
    op.create_index("audit_by_chat", "audit_log", ["platform", "chat_id", "created_at"])
