"""``/classify`` and the "Classify message" context menu: the per-label table as an embed, nothing logged."""

from __future__ import annotations

from typing import Protocol

import discord
from discord import app_commands

from bot.adapters.discord_bot._convert import chat_of, interaction_actor
from bot.adapters.discord_bot._render import reply_embed
from bot.core.commands import Commands, Context, answer
from bot.core.moderation import ModerationService
from bot.core.registry import ModelSpec
from bot.core.types import ChatRef

MAX_TEXT = 4000  # Discord lets a string option hold up to 6000 characters


class ModelSource(Protocol):
    def models(self) -> list[ModelSpec]: ...


def register_classify(tree: app_commands.CommandTree, service: ModerationService) -> None:
    """Add ``/classify`` and the message context-menu command to ``tree``."""
    commands = Commands(service)

    @tree.command(name="classify", description="Score a text on each toxicity label (only you see it unless public)")
    @app_commands.describe(
        text="The text to score",
        model="A model from models.yaml (default: this server's)",
        raw="Also show the raw scores",
        public="Show the answer to everyone in the channel",
        explain="Also show which words drove the score",
    )
    async def classify(
        interaction: discord.Interaction,
        text: app_commands.Range[str, 1, MAX_TEXT],
        model: str | None = None,
        raw: bool = False,
        public: bool = False,
        explain: bool = False,
    ) -> None:
        await interaction.response.defer(ephemeral=not public, thinking=True)
        reply = await answer(commands.classify(_context(interaction), text, model, explain=explain))
        await interaction.followup.send(embed=reply_embed(reply, raw=raw), ephemeral=not public)

    @classify.autocomplete("model")
    async def _model(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return model_choices(service, current)

    @tree.context_menu(name="Classify message")
    async def classify_message(interaction: discord.Interaction, message: discord.Message) -> None:
        if not message.content.strip():
            await interaction.response.send_message("That message has no text to classify.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        embed = reply_embed(await answer(commands.classify(_context(interaction), message.content)))
        embed.url = message.jump_url
        await interaction.followup.send(embed=embed, ephemeral=True)


def model_choices(service: ModelSource, current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete: models whose name or display name contains what the user typed (Discord shows 25 at most)."""
    needle = current.lower().strip()
    specs = [s for s in service.models() if needle in s.name.lower() or needle in s.display_name.lower()]
    return [app_commands.Choice(name=f"{s.name} - {s.display_name}"[:100], value=s.name) for s in specs[:25]]


def _context(interaction: discord.Interaction) -> Context:
    """Direct messages have no server: they classify with the default model, as a chat of their own."""
    where = chat_of(interaction.guild_id) if interaction.guild_id else ChatRef("discord", f"dm:{interaction.user.id}")
    return Context(where, interaction_actor(interaction))
