"""Discord objects -> the core's platform-free types, in one place."""

from __future__ import annotations

import discord

from bot.core.types import Actor, ChatRef, Message

PLATFORM = "discord"


def chat_of(guild_id: int) -> ChatRef:
    """Settings and the moderation log are per guild (server), not per channel."""
    return ChatRef(PLATFORM, str(guild_id))


def is_admin(permissions: discord.Permissions) -> bool:
    """Manage Server (or Administrator, which implies it) makes a member an admin of the bot."""
    return permissions.manage_guild or permissions.administrator


def actor_of(user: discord.abc.User, permissions: discord.Permissions | None = None) -> Actor:
    """The actor behind an interaction (``permissions`` as Discord resolved them for it) or a message author."""
    if permissions is None:
        permissions = user.guild_permissions if isinstance(user, discord.Member) else discord.Permissions.none()
    return Actor(user_id=str(user.id), is_admin=is_admin(permissions), display_name=user.display_name)


def interaction_actor(interaction: discord.Interaction) -> Actor:
    """Who runs a command: the permissions are those Discord computed for this interaction, not a cached guess."""
    return actor_of(interaction.user, interaction.permissions)


def to_message(message: discord.Message, *, edited: bool = False, inbox_id: int | None = None) -> Message | None:
    """A guild message from a human as a core ``Message``; None for what the bot never moderates."""
    author = message.author
    if message.guild is None or author.bot or message.webhook_id is not None or not message.content.strip():
        return None
    roles = (
        frozenset(str(role.id) for role in author.roles if not role.is_default())
        if isinstance(author, discord.Member)
        else frozenset()
    )
    return Message(
        chat=chat_of(message.guild.id),
        message_id=str(message.id),
        author=actor_of(author),
        text=message.content,
        author_roles=roles,
        edited=edited,
        revision=int(message.edited_at.timestamp() * 1000) if edited and message.edited_at else 0,
        inbox_id=inbox_id,
    )
