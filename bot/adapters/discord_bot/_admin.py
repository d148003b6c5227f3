"""``/model list|set`` and ``/moderation ...``: a server's model and policy, changed by its admins only."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.adapters.discord_bot._classify import model_choices
from bot.adapters.discord_bot._convert import chat_of
from bot.adapters.discord_bot._interactions import require_admin, send
from bot.core.labels import TOXICITY_LABELS
from bot.core.moderation import ModerationService, threshold_text
from bot.core.records import CHAT_ACTIONS, ChatSettings, ChatStats
from bot.core.registry import ModelSpec

LABEL_CHOICES = [app_commands.Choice(name=label, value=label) for label in TOXICITY_LABELS]
ACTION_CHOICES = [app_commands.Choice(name=action, value=action) for action in CHAT_ACTIONS]


def register_admin(tree: app_commands.CommandTree, service: ModerationService) -> None:
    """Add the ``/model`` and ``/moderation`` groups to ``tree``."""
    tree.add_command(_model_group(service))
    tree.add_command(_moderation_group(service))


def _model_group(service: ModerationService) -> app_commands.Group:
    group = app_commands.Group(name="model", description="The model this server uses", guild_only=True)

    @group.command(name="list", description="The models this bot can use")
    async def list_models(interaction: discord.Interaction) -> None:
        settings = await service.settings(chat_of(_guild_id(interaction)))
        current, default = service.effective_model(settings), service.registry.default
        lines = [
            _model_line(spec, in_use=spec.name == current, default=spec.name == default) for spec in service.models()
        ]
        await send(interaction, embed=discord.Embed(title="Models", description="\n".join(lines)[:4096]))

    @group.command(name="set", description="Switch this server's model (Manage Server)")
    @app_commands.describe(name="A model from /model list")
    async def set_model(interaction: discord.Interaction, name: str) -> None:
        if (actor := await require_admin(interaction)) is None:
            return
        settings = await service.set_model(chat_of(_guild_id(interaction)), actor, name)
        await send(interaction, f"This server now uses `{service.effective_model(settings)}`.")

    @set_model.autocomplete("name")
    async def _name(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return model_choices(service, current)

    return group


def _moderation_group(service: ModerationService) -> app_commands.Group:
    group = app_commands.Group(
        name="moderation",
        description="How the bot moderates this server (Manage Server)",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    @group.command(name="show", description="This server's moderation settings and counts")
    async def show(interaction: discord.Interaction) -> None:
        if await require_admin(interaction) is None:
            return
        chat = chat_of(_guild_id(interaction))
        settings = await service.settings(chat)
        embed = settings_embed(settings, service.effective_model(settings), await service.stats(chat))
        await send(interaction, embed=embed)

    @group.command(name="threshold", description="The score at which a label counts (omit the value to reset)")
    @app_commands.choices(label=LABEL_CHOICES)
    async def threshold(
        interaction: discord.Interaction, label: str, value: app_commands.Range[float, 0.0, 1.0] | None = None
    ) -> None:
        if (actor := await require_admin(interaction)) is not None:
            await service.set_threshold(chat_of(_guild_id(interaction)), actor, label, value)
            shown = threshold_text(value) if value is not None else "the model's default"
            await send(interaction, f"Threshold of `{label}` set to {shown}.")

    @group.command(name="action", description="What happens to a message over a threshold")
    @app_commands.choices(action=ACTION_CHOICES)
    async def action(interaction: discord.Interaction, action: str) -> None:
        if (actor := await require_admin(interaction)) is not None:
            await service.set_action(chat_of(_guild_id(interaction)), actor, action)
            await send(interaction, f"Action set to `{action}`.")

    @group.command(name="exempt", description="Never act on this member or role (exempt:False to undo)")
    async def exempt(
        interaction: discord.Interaction, target: discord.User | discord.Member | discord.Role, exempt: bool = True
    ) -> None:
        if (actor := await require_admin(interaction)) is not None:
            kind = "role" if isinstance(target, discord.Role) else "user"
            await service.set_exempt(chat_of(_guild_id(interaction)), actor, kind, str(target.id), exempt)
            await send(
                interaction,
                f"{target.mention} is {'now' if exempt else 'no longer'} exempt.",
                allowed_mentions=discord.AllowedMentions.none(),
            )

    @group.command(name="logchannel", description="Where the bot logs what it did (omit the channel to stop)")
    async def logchannel(interaction: discord.Interaction, channel: discord.TextChannel | None = None) -> None:
        if (actor := await require_admin(interaction)) is not None:
            await service.set_log_channel(chat_of(_guild_id(interaction)), actor, str(channel.id) if channel else None)
            await send(interaction, f"Mod-log: {channel.mention}." if channel else "Mod-log turned off.")

    @group.command(name="labels", description="Labels that may delete/warn/timeout, comma-separated; others only flag")
    async def labels(interaction: discord.Interaction, labels: str) -> None:
        if (actor := await require_admin(interaction)) is not None:
            chosen = [part.strip() for part in labels.replace(" ", ",").split(",") if part.strip()]
            await service.set_acting_labels(chat_of(_guild_id(interaction)), actor, chosen)
            await send(interaction, f"Acting labels: {', '.join(chosen) or 'none (everything only flags)'}.")

    @group.command(name="enable", description="Turn automatic moderation on")
    async def enable(interaction: discord.Interaction) -> None:
        if (actor := await require_admin(interaction)) is not None:
            await service.set_enabled(chat_of(_guild_id(interaction)), actor, True)
            await send(interaction, "Automatic moderation is on.")

    @group.command(name="disable", description="Turn automatic moderation off (/classify keeps working)")
    async def disable(interaction: discord.Interaction) -> None:
        if (actor := await require_admin(interaction)) is not None:
            await service.set_enabled(chat_of(_guild_id(interaction)), actor, False)
            await send(interaction, "Automatic moderation is off.")

    return group


def _model_line(spec: ModelSpec, *, in_use: bool, default: bool) -> str:
    line = f"`{spec.name}` - {discord.utils.escape_markdown(spec.display_name)} ({spec.task}, {spec.runtime})"
    notes = (" · in use here" if in_use else "") + (" · default" if default else "")
    return (f"**{line}**" if in_use else line) + notes


def settings_embed(settings: ChatSettings, model: str, stats: ChatStats) -> discord.Embed:
    """``/moderation show``: every setting with what it means here, and the log's counts."""
    overrides = ", ".join(f"`{label}` {threshold_text(value)}" for label, value in sorted(settings.thresholds.items()))
    exempt = [f"<@{user}>" for user in sorted(settings.exempt_users)]
    exempt += [f"<@&{role}>" for role in sorted(settings.exempt_roles)]
    escalation = (
        f"timeout {settings.timeout_seconds // 60} min at {settings.strike_limit} strikes in "
        f"{settings.strike_window_seconds // 3600} h"
        if settings.strike_limit
        else "never"
    )
    embed = discord.Embed(
        title="Moderation settings", colour=discord.Colour.green() if settings.enabled else discord.Colour.light_grey()
    )
    for name, value in (
        ("Moderation", "on" if settings.enabled else "off"),
        ("Model", f"`{model}`"),
        ("Action", f"`{settings.action}`"),
        ("Acting labels", ", ".join(f"`{label}`" for label in settings.acting_labels) or "none (flag only)"),
        ("Threshold overrides", overrides or "none (models.yaml defaults)"),
        ("Escalation", escalation),
        ("Exempt", ", ".join(exempt) or "nobody"),
        ("Mod-log", f"<#{settings.log_channel}>" if settings.log_channel else "off"),
        (
            "Log",
            f"{stats.events} events, {stats.confirmed} confirmed, {stats.rejected} marked not toxic, "
            f"{stats.action_failures} actions failed",
        ),
    ):
        embed.add_field(name=name, value=value[:1024], inline=name not in ("Threshold overrides", "Log"))
    return embed


def _guild_id(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:  # guild_only commands: Discord never sends these from a DM
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id
