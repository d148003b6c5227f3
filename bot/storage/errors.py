"""Errors of the storage layer: one line each, fit to show a user."""

from __future__ import annotations

from bot.core.errors import BotError


class StorageError(BotError):
    """The database cannot be opened, is of an unknown schema, or refused a write."""


class StorageBusyError(StorageError):
    """Another process held the database locked for longer than this bot waits; the write was not stored."""


class UnknownEventError(StorageError, LookupError):
    """No moderation event has this id."""

    def __init__(self, event_id: int) -> None:
        super().__init__(f"no moderation event #{event_id}")
        self.event_id = event_id
