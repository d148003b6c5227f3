"""The schema at the newest migration, as SQLAlchemy Core tables: what the queries are written against.

Migrations (``migrations/versions``) create and change these tables; a test checks the two agree on both engines.
JSON values are stored as text so both engines read and write them the same way.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)

# 64-bit ids on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the auto-numbered rowid
ID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

chat_settings = Table(
    "chat_settings",
    metadata,
    Column("platform", Text, primary_key=True),
    Column("chat_id", Text, primary_key=True),
    Column("model", Text),
    Column("thresholds", Text, nullable=False, server_default="{}"),
    Column("action", Text, nullable=False, server_default="warn"),
    Column("acting_labels", Text, nullable=False),
    Column("strike_limit", Integer, nullable=False, server_default="3"),
    Column("strike_window_seconds", Integer, nullable=False, server_default="86400"),
    Column("timeout_seconds", Integer, nullable=False, server_default="600"),
    Column("exempt_users", Text, nullable=False, server_default="[]"),
    Column("exempt_roles", Text, nullable=False, server_default="[]"),
    Column("log_channel", Text),
    Column("enabled", Integer, nullable=False, server_default="1"),
    Column("updated_at", Float, nullable=False),
    Column("store_text", Integer, nullable=False, server_default="0"),
    Column("language_gate", Integer, nullable=False, server_default="1"),
    CheckConstraint("action IN ('flag', 'delete', 'warn', 'timeout')", name="chat_settings_action"),
)

events = Table(
    "events",
    metadata,
    Column("id", ID, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("platform", Text, nullable=False),
    Column("chat_id", Text, nullable=False),
    Column("message_id", Text, nullable=False),
    Column("author_id", Text, nullable=False),
    Column("model", Text, nullable=False),
    Column("scores", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("flagged", Text, nullable=False, server_default="[]"),
    Column("triggered", Text, nullable=False, server_default="[]"),
    Column("text", Text, nullable=False, server_default=""),
    Column("text_stored", Integer, nullable=False, server_default="0"),
    Column("timeout_seconds", Integer, nullable=False, server_default="0"),
    Column("action_result", Text),
    Column("thresholds", Text, nullable=False, server_default="{}"),
    Column("action_ok", Integer),
    Column("explanation", Text),
    Column("revision", BigInteger, nullable=False, server_default="0"),
    Column("text_hash", Text, nullable=False, server_default=""),
    Column("author_name", Text, nullable=False, server_default=""),
    Column("action_state", Text, nullable=False, server_default="settled"),  # pending | retry | settled
    Column("action_attempts", Integer, nullable=False, server_default="0"),
    Column("action_due_at", Float),
    Index("events_by_chat", "platform", "chat_id", "created_at"),
    Index("events_by_message", "platform", "chat_id", "message_id", unique=True),
    Index(
        "events_due",
        "platform",
        "action_state",
        "action_due_at",
        sqlite_where=text("action_state != 'settled'"),
        postgresql_where=text("action_state != 'settled'"),
    ),
)

inbox = Table(
    "inbox",
    metadata,
    Column("id", ID, primary_key=True),
    Column("platform", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("chat_id", Text, nullable=False),
    Column("seq", BigInteger, nullable=False, server_default="0"),
    Column("payload", Text, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("claimed_until", Float),
    Column("done_at", Float),
    Column("error", Text),
    UniqueConstraint("platform", "key", name="inbox_key"),
    Index("inbox_pending", "platform", "done_at", "id"),
    Index("inbox_by_chat", "platform", "chat_id", "seq"),
)

strikes = Table(
    "strikes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("event_id", ID, ForeignKey("events.id", ondelete="CASCADE"), nullable=False, unique=True),
    Column("platform", Text, nullable=False),
    Column("chat_id", Text, nullable=False),
    Column("author_id", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("cleared_at", Float),
    Index("strikes_by_author", "platform", "chat_id", "author_id", "created_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", ID, primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("platform", Text, nullable=False),
    Column("chat_id", Text, nullable=False),
    Column("actor_id", Text, nullable=False),
    Column("setting", Text, nullable=False),
    Column("old_value", Text),
    Column("new_value", Text),
    Index("audit_by_chat", "platform", "chat_id", "created_at"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("event_id", ID, ForeignKey("events.id", ondelete="CASCADE"), primary_key=True, autoincrement=False),
    Column("actor_id", Text, nullable=False),
    Column("correct", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

secrets = Table(
    "secrets",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
