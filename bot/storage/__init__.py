"""aiosqlite storage: chat settings, the moderation log, strikes, feedback and the admin audit log; migrations."""

from bot.storage.database import Storage
from bot.storage.errors import StorageBusyError, StorageError, UnknownEventError
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
from bot.storage.schema import SCHEMA_VERSION

__all__ = [
    "ACTION_DONE",
    "CHAT_ACTIONS",
    "DEFAULT_ACTING_LABELS",
    "EXCERPT_CHARS",
    "SCHEMA_VERSION",
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
]
