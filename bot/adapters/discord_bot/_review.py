"""The mod-log's review buttons: "not toxic" (feedback, clear the strike, lift the timeout) and "confirm".

The buttons are ``DynamicItem``s: the event id lives in the custom id, so they keep working after a restart.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol, cast

import discord

from bot.adapters.discord_bot._convert import chat_of, interaction_actor
from bot.core.errors import BotError, PermissionDenied
from bot.core.replies import review_buttons
from bot.core.types import Actor, ChatRef

_log = logging.getLogger(__name__)

ADMINS_ONLY = "Only members with **Manage Server** can review moderation events."


class _Reviewer(Protocol):
    async def feedback(self, event_id: int, actor: Actor, correct: bool, *, chat: ChatRef | None = None) -> Any: ...


class _ReviewClient(Protocol):
    service: _Reviewer


class ReviewButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"modbot:review:(?P<event>\d+):(?P<verdict>ok|no)"
):
    """One review button of one logged event."""

    def __init__(self, event_id: int, correct: bool) -> None:
        label, style = (
            ("Confirm", discord.ButtonStyle.success) if correct else ("Not toxic", discord.ButtonStyle.danger)
        )
        custom_id = f"modbot:review:{event_id}:{'ok' if correct else 'no'}"
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=custom_id))
        self.event_id = event_id
        self.correct = correct

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> ReviewButton:
        return cls(int(match["event"]), match["verdict"] == "ok")

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction_actor(interaction).is_admin:
            return True
        await interaction.response.send_message(ADMINS_ONLY, ephemeral=True)
        return False

    async def callback(self, interaction: discord.Interaction) -> None:
        """Store the verdict, undo what can be undone, and mark the log entry as reviewed."""
        await interaction.response.defer()
        actor = interaction_actor(interaction)
        service = cast(_ReviewClient, interaction.client).service
        try:
            # with the chat: an admin of one server cannot review another server's events
            chat = chat_of(interaction.guild_id) if interaction.guild_id else None
            result = await service.feedback(self.event_id, actor, self.correct, chat=chat)
        except PermissionDenied:
            await interaction.followup.send(ADMINS_ONLY, ephemeral=True)
            return
        except BotError as error:
            await interaction.followup.send(str(error), ephemeral=True)
            return
        notes = []
        if not self.correct:
            if result.strike_cleared:
                notes.append("strike cleared")
            if result.lift_timeout and interaction.guild is not None:
                notes.append(await lift_timeout(interaction.guild, int(result.author_id)))
        verdict = "confirmed" if self.correct else "not toxic"
        summary = f"{verdict} by {interaction.user.mention}" + (f" ({'; '.join(notes)})" if notes else "")
        embeds = interaction.message.embeds if interaction.message else []
        embed = embeds[0] if embeds else discord.Embed(title=f"event #{self.event_id}")
        embed.add_field(name="Review", value=summary, inline=False)
        await interaction.edit_original_response(embed=embed, view=None)


def review_view(event_id: int) -> discord.ui.View:
    """The buttons under one mod-log entry (no timeout: the dynamic items outlive this view)."""
    view = discord.ui.View(timeout=None)
    for button in review_buttons(event_id):
        view.add_item(ReviewButton(button.event_id, correct=button.correct))
    return view


async def lift_timeout(guild: discord.Guild, user_id: int) -> str:
    try:
        member = guild.get_member(user_id) or await guild.fetch_member(user_id)
        await member.timeout(None, reason="modbot: marked not toxic by an admin")
    except discord.Forbidden:
        return "timeout NOT lifted: missing Moderate Members"
    except discord.NotFound:
        return "timeout not lifted: the member left"
    except discord.HTTPException as error:
        _log.warning("cannot lift timeout of %s in guild %s: HTTP %s", user_id, guild.id, error.status)
        return f"timeout not lifted: HTTP {error.status}"
    return "timeout lifted"
