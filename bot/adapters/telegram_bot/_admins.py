"""Who is a chat admin, from getChatMember, cached briefly so busy chats cost few API calls."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from telegram import Bot, ChatMember, ChatMemberAdministrator, ChatMemberOwner
from telegram.error import TelegramError

from bot.adapters.telegram_bot._retry import call_api

log = logging.getLogger(__name__)

ADMIN_STATUSES = frozenset({ChatMember.ADMINISTRATOR, ChatMember.OWNER})


class AdminCache:
    """getChatMember answers per (chat, user), kept for ``ttl`` seconds; failures are not cached."""

    def __init__(self, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic, max_entries: int = 10_000):
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._members: dict[tuple[int, int], tuple[float, ChatMember]] = {}

    async def member(self, bot: Bot, chat_id: int, user_id: int) -> ChatMember | None:
        """The member record, or None when Telegram could not tell (network error, chat gone ...)."""
        key = (chat_id, user_id)
        now = self._clock()
        cached = self._members.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            member = await call_api(bot.get_chat_member, chat_id=chat_id, user_id=user_id)
        except TelegramError as error:
            log.warning("getChatMember failed for chat %s: %s", chat_id, error)
            return None
        if len(self._members) >= self._max_entries:
            self._members = {k: v for k, v in self._members.items() if v[0] > now}
        self._members[key] = (now + self._ttl, member)
        return member

    async def is_admin(self, bot: Bot, chat_id: int, user_id: int) -> bool:
        """True for the chat's creator and administrators."""
        member = await self.member(bot, chat_id, user_id)
        return member is not None and member.status in ADMIN_STATUSES

    async def bot_can_moderate(self, bot: Bot, chat_id: int) -> bool:
        """Whether the bot itself may delete messages and restrict members in this chat."""
        member = await self.member(bot, chat_id, bot.id)
        if isinstance(member, ChatMemberOwner):
            return True
        return (
            isinstance(member, ChatMemberAdministrator) and member.can_delete_messages and member.can_restrict_members
        )

    def forget_chat(self, chat_id: int) -> None:
        """Drop what is known about a chat (after a failure that suggests rights changed)."""
        self._members = {k: v for k, v in self._members.items() if k[0] != chat_id}
