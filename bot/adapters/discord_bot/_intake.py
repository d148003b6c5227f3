"""Durable Discord intake: each message event is recorded in the inbox, then moderated from there.

The gateway has no acknowledgement to hold back, so what the inbox adds on Discord is: messages in hand when the
process died are moderated after the restart (fetched again by id), and on every (re)connect each channel's history
since the last message recorded there is read (bounded by a time window and a count) and moderated too. A message
seen both live and in history is recorded once: the inbox key is the message id (an edit: id and edit time).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

import discord

from bot.adapters.discord_bot._convert import PLATFORM
from bot.core.intake import InboxEntry, InboxItem, Intake

log = logging.getLogger(__name__)

CACHE_SIZE = 10_000  # messages received live and not yet processed: kept so they need no fetch

Moderate = Callable[[discord.Message, bool, int], Awaitable[None]]  # (message, edited, inbox row id)


def key_of(message: discord.Message, *, edited: bool) -> str:
    if edited and message.edited_at is not None:
        return f"{message.id}:{int(message.edited_at.timestamp() * 1000)}"
    return str(message.id)


class DiscordIntake:
    """Records message events, catches up on channel history, and hands inbox rows back as ``discord.Message``.

    With shards, each shard has its own inbox queue (``discord/<shard>``): a process handles only the guilds of the
    shards it runs, so it must never claim another process's rows.
    """

    def __init__(
        self,
        intake_for: Callable[[str], Intake],
        client: discord.Client,
        moderate: Moderate,
        *,
        window: dt.timedelta = dt.timedelta(minutes=15),
        max_messages: int = 500,
    ) -> None:
        self._intake_for = intake_for
        self._client = client
        self._moderate = moderate
        self._window = window
        self._max_messages = max_messages
        self._live: OrderedDict[str, discord.Message] = OrderedDict()
        self._intakes: dict[str, Intake] = {}
        self._runs: list[asyncio.Task[None]] = []
        self._stop: asyncio.Event | None = None
        self._grace = 0.0

    def start(self, stop: asyncio.Event, *, grace: float) -> None:
        """Work through the queues from now on (each queue's worker starts with its first guild), until ``stop``."""
        self._stop, self._grace = stop, grace

    async def wait_stopped(self) -> None:
        await asyncio.gather(*self._runs, return_exceptions=True)

    def queue_of(self, guild_id: int) -> str:
        count = getattr(self._client, "shard_count", None) or 1
        return PLATFORM if count <= 1 else f"{PLATFORM}/{(guild_id >> 22) % count}"

    def intake(self, guild_id: int) -> Intake:
        """The intake of the guild's queue, its worker started on first use (rows left from before come first)."""
        queue = self.queue_of(guild_id)
        if queue not in self._intakes:
            self._intakes[queue] = intake = self._intake_for(queue)
            if self._stop is not None:
                run = intake.run(self.process, self._stop, grace=self._grace)
                self._runs.append(asyncio.create_task(run, name=f"intake-{queue}"))
        return self._intakes[queue]

    async def receive(self, message: discord.Message, *, edited: bool = False) -> bool:
        """Record a message (True when new); it is moderated by ``process`` once the inbox hands it out."""
        if message.guild is None:
            return False
        key = key_of(message, edited=edited)
        payload = json.dumps({"channel_id": message.channel.id, "message_id": message.id, "edited": edited})
        self._live[key] = message
        while len(self._live) > CACHE_SIZE:
            self._live.popitem(last=False)
        entry = InboxEntry(key=key, chat_id=str(message.channel.id), payload=payload, seq=message.id)
        new = await self.intake(message.guild.id).receive([entry]) > 0
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
            intake = self.intake(guild.id)
            me = guild.me
            for channel in guild.text_channels:
                permissions = channel.permissions_for(me) if me is not None else None
                if permissions is None or not (permissions.read_message_history and permissions.view_channel):
                    continue
                last = await intake.last_seq(str(channel.id))
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
