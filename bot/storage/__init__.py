"""aiosqlite storage of the core's records: it implements ``bot.core.moderation.ModerationStore``; migrations."""

from bot.storage.database import Storage
from bot.storage.schema import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "Storage"]
