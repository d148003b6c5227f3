"""A short-lived cache of chat settings shared by one process's tasks, with one database read per chat at a time.

Why a TTL and not LISTEN/NOTIFY: it works the same on SQLite and PostgreSQL, holds no extra connection per process
and needs no reconnect logic, and it bounds how stale another process's change can be (``ttl``, 0.5 s by default).
This process's own changes show at once (``invalidate``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bot.core.records import ChatSettings
from bot.core.types import ChatRef

MAX_CHATS = 10_000


class SettingsCache:
    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._fresh: dict[ChatRef, tuple[float, ChatSettings]] = {}
        self._loading: dict[ChatRef, asyncio.Future[ChatSettings]] = {}
        self._changes = 0  # invalidations so far: a read that started before one must not be cached

    async def get(self, chat: ChatRef, load: Callable[[], Awaitable[ChatSettings]]) -> ChatSettings:
        """The cached settings, else ``load()`` once for all the tasks asking for this chat meanwhile."""
        cached = self._fresh.get(chat)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        pending = self._loading.get(chat)
        if pending is None:
            pending = asyncio.ensure_future(self._load(chat, load))
            self._loading[chat] = pending
        return await asyncio.shield(pending)

    def invalidate(self, chat: ChatRef) -> None:
        """Forget the chat: the next ``get`` reads the database, even if a read started earlier is still running."""
        self._changes += 1
        self._fresh.pop(chat, None)
        self._loading.pop(chat, None)

    async def _load(self, chat: ChatRef, load: Callable[[], Awaitable[ChatSettings]]) -> ChatSettings:
        started, changes = time.monotonic(), self._changes
        future = asyncio.current_task()
        try:
            settings = await load()
        finally:
            if self._loading.get(chat) is future:
                del self._loading[chat]
        if self._ttl > 0 and changes == self._changes:
            if len(self._fresh) >= MAX_CHATS:
                self._fresh.clear()
            self._fresh[chat] = (started + self._ttl, settings)
        return settings
