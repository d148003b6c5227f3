"""Durable Discord intake: each message event is recorded in the inbox, then moderated from there.

The gateway has no acknowledgement to hold back, so what the inbox adds on Discord is: messages in hand when the
process died are moderated after the restart (fetched again by id), and on every (re)connect each channel's history
since the last message recorded there is read (bounded by a time window and a count) and moderated too. A message
seen both live and in history is recorded once: the inbox key is the message id (an edit: id and edit time).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import discord

from bot.core.intake import InboxEntry, InboxItem, Intake

log = logging.getLogger(__name__)

CACHE_SIZE = 10_000  # messages received live and not yet processed: kept so they need no fetch

Moderate = Callable[[discord.Message, bool, int], Awaitable[None]]  # (message, edited, inbox row id)


def key_of(message: discord.Message, *, edited: bool) -> str:
    if edited and message.edited_at is not None:
        return f"{message.id}:{int(message.edited_at.timestamp() * 1000)}"
    return str(message.id)


class DiscordIntake:
    """Records message events, catches up on channel history, and hands inbox rows back as ``discord.Message``."""

    def __init__(
        self,
        intake: Intake,
        client: discord.Client,
        moderate: Moderate,
        *,
        window: dt.timedelta = dt.timedelta(minutes=15),
        max_messages: int = 500,
    ) -> None:
        self.intake = intake
        self._client = client
        self._moderate = moderate
        self._window = window
        self._max_messages = max_messages
        self._live: OrderedDict[str, discord.Message] = OrderedDict()

    async def receive(self, message: discord.Message, *, edited: bool = False) -> bool:
        """Record a message (True when new); it is moderated by ``process`` once the inbox hands it out."""
        key = key_of(message, edited=edited)
        payload = json.dumps({"channel_id": message.channel.id, "message_id": message.id, "edited": edited})
        self._live[key] = message
        while len(self._live) > CACHE_SIZE:
            self._live.popitem(last=False)
        entry = InboxEntry(key=key, chat_id=str(message.channel.id), payload=payload, seq=message.id)
        new = await self.intake.receive([entry]) > 0
        if not new:
            self._live.pop(key, None)
        return new

    async def process(self, item: InboxItem) -> None:
        """Moderate a recorded message: the one received live, else fetched again (gone: nothing to do)."""
        data = json.loads(item.payload)
        message = self._live.pop(item.key, None) or await self._fetch(data["channel_id"], data["message_id"])
        if message is not None:
            await self._moderate(message, bool(data["edited"]), item.id)

    async def catch_up(self) -> int:
        """Read each readable text channel's history since the last message recorded there; return how many were new."""
        floor = discord.utils.time_snowflake(discord.utils.utcnow() - self._window)
        new = 0
        for guild in self._client.guilds:
            me = guild.me
            for channel in guild.text_channels:
                permissions = channel.permissions_for(me) if me is not None else None
                if permissions is None or not (permissions.read_message_history and permissions.view_channel):
                    continue
                last = await self.intake.last_seq(str(channel.id))
                after = discord.Object(max(last or 0, floor))
                try:
                    async for message in channel.history(limit=self._max_messages, after=after, oldest_first=True):
                        if not message.author.bot and await self.receive(message):
                            new += 1
                except discord.HTTPException as error:
                    log.warning("catch-up of #%s failed: %s", channel.name, error)
        if new:
            log.info("caught up on %d messages sent while the bot was away", new)
        return new

    async def _fetch(self, channel_id: int, message_id: int) -> discord.Message | None:
        try:
            channel = self._client.get_channel(channel_id) or await self._client.fetch_channel(channel_id)
            return await channel.fetch_message(message_id)  # type: ignore[union-attr]
        except (discord.NotFound, discord.Forbidden):
            return None
