"""``/model list|set``, ``/moderation ...`` and ``/help``: the shared command surface as slash commands.

Each command parses its options into a ``bot.core.commands.Commands`` call and renders the neutral reply as an
embed; the admin check runs here (Manage Server) and again in the service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

import discord
from discord import app_commands

from bot.adapters.discord_bot._classify import model_choices
from bot.adapters.discord_bot._convert import chat_of, interaction_actor
from bot.adapters.discord_bot._interactions import require_admin, send
from bot.adapters.discord_bot._render import reply_embed
from bot.adapters.discord_bot._review import lift_timeout
from bot.core.commands import Commands, Context, answer
from bot.core.durations import parse_duration
from bot.core.labels import TOXICITY_LABELS
from bot.core.moderation import ModerationService
from bot.core.records import CHAT_ACTIONS
from bot.core.replies import Reply

LABEL_CHOICES = [app_commands.Choice(name=label, value=label) for label in TOXICITY_LABELS]
ACTION_CHOICES = [app_commands.Choice(name=str(action), value=str(action)) for action in CHAT_ACTIONS]
POINT_CHOICES = [app_commands.Choice(name=point, value=point) for point in ("flag", "act")]
VERDICT_CHOICES = [app_commands.Choice(name="right (confirm)", value="right"), app_commands.Choice(
    name="wrong (not toxic)", value="wrong")]  # fmt: skip
HELP_ROWS = (
    ("/classify TEXT [model] [raw] [public]", "the per-label scores of a text; also a message's context menu"),
    ("/model list | /model set NAME", "the models; switch this server's model (Manage Server)"),
    ("/moderation show", "every moderation setting of this server"),
    ("/moderation threshold LABEL [VALUE] [POINT]", "flag (review) and/or act (automatic action) threshold, 0-1"),
    ("/moderation action ACTION", "what acting labels over their act threshold get"),
    ("/moderation labels LABELS", "the labels that may act; the others only flag"),
    ("/moderation exempt TARGET [exempt]", "never act on a member or role"),
    ("/moderation logchannel [CHANNEL]", "where the bot posts what it did, with review buttons"),
    ("/moderation enable | disable", "automatic moderation on or off"),
    ("/moderation storetext ON", "keep whole messages in the log (export-feedback)"),
    ("/moderation languagegate ON", "only flag messages in languages the model does not know"),
    ("/moderation escalation STRIKES WINDOW TIMEOUT", "a timeout at STRIKES strikes in WINDOW (e.g. 3 24h 10min)"),
    ("/moderation stats", "counts of this server's moderation log"),
    ("/moderation review EVENT VERDICT", "review a logged event (also the buttons in the mod-log)"),
    ("/dashboard", "a private link to this server's web dashboard (Manage Server)"),
)


def register_admin(tree: app_commands.CommandTree, service: ModerationService) -> None:
    """Add ``/model``, ``/moderation`` and ``/help`` to ``tree``."""
    commands = Commands(service)
    tree.add_command(_model_group(service, commands))
    tree.add_command(_moderation_group(commands))

    @tree.command(name="help", description="What the bot does and every command")
    async def help_command(interaction: discord.Interaction) -> None:
        await send(interaction, embed=reply_embed(Reply(title="Commands", table=HELP_ROWS)))


async def _run(
    interaction: discord.Interaction, call: Callable[[Context], Awaitable[Reply]], *, admin: bool = True
) -> None:
    """Check Manage Server (admin commands), run the core command, answer with its reply."""
    if admin:
        actor = await require_admin(interaction)
        if actor is None:
            return
    else:
        actor = interaction_actor(interaction)
    reply = await answer(call(Context(chat_of(_guild_id(interaction)), actor)))
    await send(interaction, embed=reply_embed(reply), allowed_mentions=discord.AllowedMentions.none())


def _model_group(service: ModerationService, commands: Commands) -> app_commands.Group:
    group = app_commands.Group(name="model", description="The model this server uses", guild_only=True)

    @group.command(name="list", description="The models this bot can use")
    async def list_models(interaction: discord.Interaction) -> None:
        await _run(interaction, commands.models, admin=False)

    @group.command(name="set", description="Switch this server's model (Manage Server)")
    @app_commands.describe(name="A model from /model list")
    async def set_model(interaction: discord.Interaction, name: str) -> None:
        await _run(interaction, lambda ctx: commands.set_model(ctx, name))

    @set_model.autocomplete("name")
    async def _name(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return model_choices(service, current)

    return group


def _moderation_group(commands: Commands) -> app_commands.Group:
    group = app_commands.Group(
        name="moderation",
        description="How the bot moderates this server (Manage Server)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    @group.command(name="show", description="This server's moderation settings")
    async def show(interaction: discord.Interaction) -> None:
        await _run(interaction, commands.settings)

    @group.command(name="threshold", description="A label's flag and/or act threshold (omit the value to reset)")
    @app_commands.describe(point="flag (review) or act (automatic action); omit for both")
    @app_commands.choices(label=LABEL_CHOICES, point=POINT_CHOICES)
    async def threshold(
        interaction: discord.Interaction,
        label: str,
        value: app_commands.Range[float, 0.0, 1.0] | None = None,
        point: str | None = None,
    ) -> None:
        await _run(interaction, lambda ctx: commands.threshold(ctx, label, value, point))

    @group.command(name="action", description="What acting labels over their act threshold get")
    @app_commands.choices(action=ACTION_CHOICES)
    async def action(interaction: discord.Interaction, action: str) -> None:
        await _run(interaction, lambda ctx: commands.action(ctx, action))

    @group.command(name="exempt", description="Never act on this member or role (exempt:False to undo)")
    async def exempt(
        interaction: discord.Interaction, target: discord.User | discord.Member | discord.Role, exempt: bool = True
    ) -> None:
        kind: Literal["user", "role"] = "role" if isinstance(target, discord.Role) else "user"
        await _run(interaction, lambda ctx: commands.exempt(ctx, kind, str(target.id), exempt, target.mention))

    @group.command(name="logchannel", description="Where the bot logs what it did (omit the channel to stop)")
    async def logchannel(interaction: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
        ident, shown = (str(channel.id), channel.mention) if channel else (None, None)
        await _run(interaction, lambda ctx: commands.log_channel(ctx, ident, shown))

    @group.command(name="labels", description="Labels that may delete/warn/timeout, comma-separated; others only flag")
    async def labels(interaction: discord.Interaction, labels: str) -> None:
        chosen = [part for part in labels.replace(",", " ").split() if part]
        await _run(interaction, lambda ctx: commands.acting_labels(ctx, [] if chosen == ["none"] else chosen))

    @group.command(name="enable", description="Turn automatic moderation on")
    async def enable(interaction: discord.Interaction) -> None:
        await _run(interaction, lambda ctx: commands.enabled(ctx, True))

    @group.command(name="disable", description="Turn automatic moderation off (/classify keeps working)")
    async def disable(interaction: discord.Interaction) -> None:
        await _run(interaction, lambda ctx: commands.enabled(ctx, False))

    @group.command(name="storetext", description="Keep whole messages in the log (for export-feedback)")
    async def storetext(interaction: discord.Interaction, on: bool) -> None:
        await _run(interaction, lambda ctx: commands.store_text(ctx, on))

    @group.command(name="languagegate", description="Only flag messages in languages the model does not know")
    async def languagegate(interaction: discord.Interaction, on: bool) -> None:
        await _run(interaction, lambda ctx: commands.language_gate(ctx, on))

    @group.command(name="escalation", description="A timeout at STRIKES strikes in WINDOW (strikes 0: never)")
    @app_commands.describe(window="e.g. 24h", timeout="e.g. 10min")
    async def escalation(
        interaction: discord.Interaction,
        strikes: app_commands.Range[int, 0, 100],
        window: str,
        timeout: str,  # noqa: ASYNC109 - a duration typed by the admin
    ) -> None:
        async def call(ctx: Context) -> Reply:
            return await commands.escalation(ctx, strikes, parse_duration(window), parse_duration(timeout))

        await _run(interaction, call)

    @group.command(name="stats", description="Counts of this server's moderation log")
    async def stats(interaction: discord.Interaction) -> None:
        await _run(interaction, commands.stats)

    @group.command(name="review", description="Review a logged event (wrong: not toxic, clears its strike)")
    @app_commands.choices(verdict=VERDICT_CHOICES)
    async def review(interaction: discord.Interaction, event: app_commands.Range[int, 1], verdict: str) -> None:
        async def call(ctx: Context) -> Reply:
            reply, result = await commands.review(ctx, event, verdict == "right")
            if result.lift_timeout and interaction.guild is not None:
                lifted = await lift_timeout(interaction.guild, int(result.author_id))
                reply = Reply.text(*reply.lines, lifted + ".")
            return reply

        await _run(interaction, call)

    return group


def _guild_id(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:  # guild_only commands: Discord never sends these from a DM
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id
