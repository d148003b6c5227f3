"""The bot's state in SQLite (default) or PostgreSQL: settings, the moderation log, strikes, feedback, audit log.

One SQLAlchemy Core query layer for both engines; Alembic migrations (``migrations/``) run at start.
"""

from bot.storage.database import Storage
from bot.storage.errors import StorageBusyError, StorageError, UnknownEventError
from bot.storage.migrate import head_revision
from bot.storage.records import (
    ACTION_DONE,
    CHAT_ACTIONS,
    DEFAULT_ACTING_LABELS,
    EXCERPT_CHARS,
    AuditEntry,
    ChatSettings,
    ChatStats,
    EventRecord,
    NewEvent,
    excerpt,
)

__all__ = [
    "ACTION_DONE",
    "CHAT_ACTIONS",
    "DEFAULT_ACTING_LABELS",
    "EXCERPT_CHARS",
    "AuditEntry",
    "ChatSettings",
    "ChatStats",
    "EventRecord",
    "NewEvent",
    "Storage",
    "StorageBusyError",
    "StorageError",
    "UnknownEventError",
    "excerpt",
    "head_revision",
]
