"""The mod-log channel: one post per moderation event (with review buttons), and problems told once."""

from __future__ import annotations

import logging
from typing import Protocol

import discord

from bot.adapters.discord_bot._actions import ActionResult
from bot.adapters.discord_bot._convert import chat_of
from bot.adapters.discord_bot._review import review_view
from bot.core.moderation import Outcome
from bot.core.records import ChatSettings
from bot.core.report import escape_discord
from bot.core.types import ChatRef

_log = logging.getLogger(__name__)

EXCERPT_CHARS = 300
COLOURS = {
    "flag": discord.Colour.gold(),
    "warn": discord.Colour.orange(),
    "delete": discord.Colour.red(),
    "timeout": discord.Colour.dark_red(),
}
TITLES = {"flag": "Flagged", "warn": "Warned", "delete": "Deleted", "timeout": "Deleted and timed out"}


class SettingsSource(Protocol):
    async def settings(self, chat: ChatRef) -> ChatSettings: ...


class ModLog:
    """Writes to each guild's configured log channel; failures to write are logged, never raised."""

    def __init__(self, service: SettingsSource) -> None:
        self._service = service
        self._told: set[tuple[int, str]] = set()

    async def post_event(self, message: discord.Message, outcome: Outcome, result: ActionResult) -> None:
        """Post what the bot did to ``message``, with "not toxic" / "confirm" buttons for admins."""
        if message.guild is None or outcome.event_id is None:
            return
        channel = await self._channel(message.guild)
        if channel is not None:
            await self._send(channel, embed=event_embed(message, outcome, result), view=review_view(outcome.event_id))

    async def tell_once(self, guild: discord.Guild, kind: str, text: str) -> None:
        """Tell the mod-log about a problem, once per guild and kind of problem (the log gets every occurrence)."""
        _log.warning("guild %s: %s", guild.id, text)
        if (guild.id, kind) in self._told:
            return
        self._told.add((guild.id, kind))
        channel = await self._channel(guild)
        if channel is not None:
            await self._send(channel, content=f"\N{WARNING SIGN}\N{VARIATION SELECTOR-16} {text}")

    async def _channel(self, guild: discord.Guild) -> discord.abc.Messageable | None:
        settings = await self._service.settings(chat_of(guild.id))
        if not settings.log_channel:
            return None
        channel = guild.get_channel_or_thread(int(settings.log_channel))
        if channel is None or not isinstance(channel, discord.abc.Messageable):
            _log.warning("guild %s: mod-log channel %s not found", guild.id, settings.log_channel)
            return None
        return channel

    async def _send(self, channel: discord.abc.Messageable, **kwargs: object) -> None:
        try:
            await channel.send(allowed_mentions=discord.AllowedMentions.none(), **kwargs)  # type: ignore[arg-type]
        except discord.HTTPException as error:
            _log.warning(
                "cannot post to mod-log channel %s: HTTP %s %s", getattr(channel, "id", "?"), error.status, error.text
            )


def event_embed(message: discord.Message, outcome: Outcome, result: ActionResult) -> discord.Embed:
    """The mod-log entry of one event: who, where, why, and what Discord answered."""
    decision = outcome.decision
    action = str(decision.action)
    text = discord.utils.escape_markdown(message.content)
    if len(text) > EXCERPT_CHARS:
        text = text[: EXCERPT_CHARS - 1] + "…"
    embed = discord.Embed(
        title=TITLES.get(action, action),
        description=f">>> {text}",
        colour=COLOURS.get(action, discord.Colour.default()),
    )
    embed.add_field(name="Author", value=f"{message.author.mention} (`{message.author.id}`)")
    embed.add_field(name="Channel", value=getattr(message.channel, "mention", str(message.channel.id)))
    embed.add_field(name="Reason", value=decision.reason[:1024] or "-", inline=False)
    if outcome.explanation is not None:
        embed.add_field(name="Why", value=escape_discord(outcome.explanation.summary())[:1024], inline=False)
    embed.add_field(name="Result", value=result.text[:1024], inline=False)
    model = outcome.classification.model if outcome.classification else "?"
    embed.set_footer(text=f"event #{outcome.event_id} · model {model}")
    return embed
