"""Discord's side of the web dashboard: ``/dashboard`` answered ephemerally, admin checks and lifting a timeout when
the dashboard asks."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.adapters.discord_bot._convert import chat_of, is_admin
from bot.adapters.discord_bot._interactions import require_admin, send
from bot.adapters.discord_bot._review import lift_timeout
from bot.core.commands import Commands, Context, answer
from bot.core.dashboard_access import LinkMaker
from bot.core.moderation import ModerationService


class DiscordPlatform:
    """The calls the dashboard makes on Discord (``bot.core.platforms.PlatformOps``)."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def is_admin(self, chat_id: str, user_id: str) -> bool:
        """Manage Server or Administrator now, as the server's roles say (the owner always)."""
        guild, member = await self._member(chat_id, user_id)
        if guild is None or member is None:
            return False
        return member.id == guild.owner_id or is_admin(member.guild_permissions)

    async def lift_timeout(self, chat_id: str, user_id: str) -> str:
        guild = self._client.get_guild(int(chat_id)) if chat_id.isdigit() else None
        if guild is None or not user_id.isdigit():
            return "timeout not lifted: the bot is not in that server"
        return await lift_timeout(guild, int(user_id))

    async def _member(self, chat_id: str, user_id: str) -> tuple[discord.Guild | None, discord.Member | None]:
        if not (chat_id.isdigit() and user_id.isdigit()):
            return None, None
        guild = self._client.get_guild(int(chat_id))
        if guild is None:
            return None, None
        try:
            return guild, guild.get_member(int(user_id)) or await guild.fetch_member(int(user_id))
        except discord.HTTPException:  # left the server, or Discord could not tell: not an admin now
            return guild, None


def register_dashboard(tree: app_commands.CommandTree, service: ModerationService, links: LinkMaker | None) -> None:
    """Add ``/dashboard`` (Manage Server): a private link to this server's dashboard, only the caller sees it."""
    commands = Commands(service)

    @tree.command(name="dashboard", description="A private link to this server's moderation dashboard")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    async def dashboard(interaction: discord.Interaction) -> None:
        if (actor := await require_admin(interaction)) is None or interaction.guild_id is None:
            return
        reply = await answer(commands.dashboard(Context(chat_of(interaction.guild_id), actor), links))
        await send(interaction, "\n".join(reply.lines), ephemeral=True)  # private whatever the reply: a link
