"""Answering interactions: one send helper, the admin gate, and the error handler of every app command."""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

from bot.adapters.discord_bot._convert import interaction_actor
from bot.core.errors import BotError, PermissionDenied
from bot.core.types import Actor

_log = logging.getLogger(__name__)

ADMINS_ONLY = "Only members with **Manage Server** can change the bot's settings."


async def send(
    interaction: discord.Interaction, content: str | None = None, *, ephemeral: bool = True, **kwargs: Any
) -> None:
    """Answer ``interaction``, or follow up when it was already answered or deferred (a second answer raises)."""
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=ephemeral, **kwargs)
    else:
        await interaction.response.send_message(content, ephemeral=ephemeral, **kwargs)


async def require_admin(interaction: discord.Interaction) -> Actor | None:
    """The actor when Discord says they have Manage Server here; else answer with a refusal and return None.

    The check runs on our side whatever the command's default permissions say (a server can override those), and
    the moderation service checks again.
    """
    actor = interaction_actor(interaction)
    if interaction.guild_id is None or not actor.is_admin:
        await send(interaction, ADMINS_ONLY)
        return None
    return actor


async def on_app_command_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """Every failing command answers the user with one line; only unexpected failures are logged with a trace."""
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    if isinstance(original, PermissionDenied):
        message = ADMINS_ONLY
    elif isinstance(original, BotError):
        message = str(original)
    elif isinstance(original, app_commands.NoPrivateMessage):
        message = "This command only works in a server."
    elif isinstance(original, app_commands.CheckFailure | app_commands.TransformerError):
        message = str(original)
    elif isinstance(original, discord.HTTPException):
        _log.warning("Discord refused an answer to /%s: HTTP %s %s", _name(interaction), original.status, original.text)
        return
    else:
        _log.error("/%s failed", _name(interaction), exc_info=original)
        message = "Something went wrong; the error was logged."
    try:
        await send(interaction, message)
    except discord.HTTPException as failure:
        _log.warning("cannot tell the user that /%s failed: HTTP %s", _name(interaction), failure.status)


def _name(interaction: discord.Interaction) -> str:
    command = interaction.command
    return command.qualified_name if command is not None else "?"
