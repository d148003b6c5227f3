"""``/classify`` and the "Classify message" context menu: the per-label table as an embed, nothing logged."""

from __future__ import annotations

from typing import Protocol

import discord
from discord import app_commands

from bot.adapters.discord_bot._convert import chat_of, interaction_actor
from bot.core.explain import Explanation
from bot.core.registry import ModelSpec
from bot.core.report import render_discord, render_raw
from bot.core.types import Actor, ChatRef, Classification

MAX_TEXT = 4000  # Discord lets a string option hold up to 6000 characters


class ClassifyService(Protocol):
    async def classify(
        self, text: str, *, chat: ChatRef | None = None, model: str | None = None, actor: Actor | None = None
    ) -> Classification: ...
    def models(self) -> list[ModelSpec]: ...
    async def explain(self, text: str, classification: Classification) -> Explanation | None: ...


def register_classify(tree: app_commands.CommandTree, service: ClassifyService) -> None:
    """Add ``/classify`` and the message context-menu command to ``tree``."""

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
        chat = chat_of(interaction.guild_id) if interaction.guild_id else None
        result = await service.classify(text, chat=chat, model=model, actor=interaction_actor(interaction))
        why = await service.explain(text, result) if explain else None
        embed = classification_embed(result, _display_name(service, result.model), text=text, raw=raw, explanation=why)
        await interaction.followup.send(embed=embed, ephemeral=not public)

    @classify.autocomplete("model")
    async def _model(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return model_choices(service, current)

    @tree.context_menu(name="Classify message")
    async def classify_message(interaction: discord.Interaction, message: discord.Message) -> None:
        if not message.content.strip():
            await interaction.response.send_message("That message has no text to classify.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        chat = chat_of(interaction.guild_id) if interaction.guild_id else None
        result = await service.classify(message.content, chat=chat)
        embed = classification_embed(result, _display_name(service, result.model), text=message.content)
        embed.url = message.jump_url
        await interaction.followup.send(embed=embed, ephemeral=True)


def model_choices(service: ClassifyService, current: str) -> list[app_commands.Choice[str]]:
    """Autocomplete: models whose name or display name contains what the user typed (Discord shows 25 at most)."""
    needle = current.lower().strip()
    specs = [s for s in service.models() if needle in s.name.lower() or needle in s.display_name.lower()]
    return [app_commands.Choice(name=f"{s.name} - {s.display_name}"[:100], value=s.name) for s in specs[:25]]


def classification_embed(
    result: Classification,
    display_name: str,
    *,
    text: str | None = None,
    raw: bool = False,
    explanation: Explanation | None = None,
) -> discord.Embed:
    """The verdict as the title (and colour), the quoted text and the per-label table as the description."""
    summary = result.summary
    if summary.toxic is None:
        title, colour = f"{summary.label} ({summary.score:.2f})", discord.Colour.blurple()
    elif summary.toxic:
        title, colour = "Toxic", discord.Colour.red()
    else:
        title, colour = "Not toxic", discord.Colour.green()
    embed = discord.Embed(
        title=f"{title} · {display_name}"[:256],
        description=render_discord(result, text, explanation)[:4096],
        colour=colour,
    )
    if raw:
        embed.add_field(name="Raw scores", value=f"```json\n{render_raw(result)[:1000]}\n```", inline=False)
    return embed


def _display_name(service: ClassifyService, name: str) -> str:
    return next((s.display_name or s.name for s in service.models() if s.name == name), name)
