"""The core's ``ModerationStore`` on SQLite (default) or PostgreSQL: one SQLAlchemy Core query layer for both engines,
Alembic migrations (``migrations/``) at start. Only ``bot.app`` and ``bot.cli`` know this package."""

from bot.storage.database import Storage
from bot.storage.migrate import head_revision

__all__ = ["Storage", "head_revision"]
