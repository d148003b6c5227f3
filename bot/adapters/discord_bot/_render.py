"""Neutral replies of the command surface -> Discord embeds (user-supplied text escaped)."""

from __future__ import annotations

import discord

from bot.core.explain import Explanation
from bot.core.replies import Reply
from bot.core.report import render_discord, render_raw
from bot.core.types import Classification

_INLINE_LIMIT = 40  # short values sit side by side, longer ones get a row of their own


def reply_embed(reply: Reply, *, raw: bool = False) -> discord.Embed:
    """The reply as one embed: the title, the lines as the description, one field per table row."""
    if reply.scores is not None:
        return classification_embed(
            reply.scores, reply.title or reply.scores.model, text=reply.quoted, raw=raw, explanation=reply.explanation
        )
    colour = discord.Colour.red() if reply.error else discord.Colour.blurple()
    description = "\n".join(discord.utils.escape_markdown(line) for line in reply.lines)
    embed = discord.Embed(title=reply.title[:256] or None, description=description[:4096] or None, colour=colour)
    for name, value in reply.table[:25]:
        shown = discord.utils.escape_markdown(value) or "-"
        embed.add_field(name=name[:256], value=shown[:1024], inline=len(value) <= _INLINE_LIMIT)
    return embed


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
