"""Gateway and REST payloads of the fake Discord, shaped like the real API v10 (only what discord.py reads)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SNOWFLAKE_BASE = 1_200_000_000_000_000_000

# permission bits (https://discord.com/developers/docs/topics/permissions)
ADD_REACTIONS = 1 << 6
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
READ_MESSAGE_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
MODERATE_MEMBERS = 1 << 40
ALL = (1 << 50) - 1

EVERYONE = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | READ_MESSAGE_HISTORY | ADD_REACTIONS | USE_APPLICATION_COMMANDS
MODS = MANAGE_GUILD | MANAGE_MESSAGES | MODERATE_MEMBERS
BOT = MANAGE_MESSAGES | MODERATE_MEMBERS


def now() -> str:
    return datetime.now(UTC).isoformat()


def user(ident: int, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": str(ident),
        "username": name,
        "global_name": name.title(),
        "discriminator": "0",
        "avatar": None,
        "bot": bot,
        "public_flags": 0,
        "flags": 0,
    }


@dataclass
class FakeGuild:
    """State of the one guild: ids are fixed so tests can name them."""

    id: str
    users: dict[str, dict[str, Any]]  # "bot" | "owner" | "admin" | "member" -> user payload
    member_roles: dict[str, list[str]]  # name -> role ids
    roles: dict[str, dict[str, Any]]
    channels: dict[str, dict[str, Any]]  # "general" | "mod-log"
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    interaction_messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # token -> original response
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    name: str = "Fake Guild"

    @classmethod
    def build(cls, index: int = 0, *, extra_members: int = 0) -> FakeGuild:
        """Guild ``index``: its ids differ in the snowflake's timestamp bits, so ``(id >> 22) % shards`` spreads them;
        the users are the same in every guild. ``extra_members`` adds plain members ``user-1`` ... ``user-N``."""
        base = SNOWFLAKE_BASE - 1_000
        own = base + (index << 22)  # the guild's own ids: guild, roles, channels
        gid = str(own + 1)
        users = {
            "bot": user(base + 10, "modbot", bot=True),
            "owner": user(base + 11, "owner"),
            "admin": user(base + 12, "alice"),
            "member": user(base + 13, "bob"),
        }
        users |= {f"user-{n}": user(base + 100 + n, f"user{n}") for n in range(1, extra_members + 1)}
        roles = {
            "@everyone": _role(gid, "@everyone", EVERYONE, 0),
            "mods": _role(str(own + 21), "Mods", MODS, 2),
            "bots": _role(str(own + 22), "Bots", BOT, 1),
        }
        channels = {
            "general": _channel(own + 31, gid, "general", 0),
            "mod-log": _channel(own + 32, gid, "mod-log", 1),
        }
        member_roles = {name: [] for name in users} | {"bot": [roles["bots"]["id"]], "admin": [roles["mods"]["id"]]}
        name = "Fake Guild" if index == 0 else f"Fake Guild {index}"
        guild = cls(gid, users, member_roles, roles, channels, name=name)
        guild.members = {name: _member(users[name], member_roles[name]) for name in users}
        return guild

    def channels_by_id(self) -> dict[str, dict[str, Any]]:
        return {channel["id"]: channel for channel in self.channels.values()}

    def shard(self, count: int) -> int:
        """The shard that receives this guild's events when the bot runs ``count`` shards (Discord's formula)."""
        return (int(self.id) >> 22) % count

    @property
    def owner_id(self) -> str:
        return self.users["owner"]["id"]

    def member_by_id(self, user_id: str) -> dict[str, Any] | None:
        return next((m for m in self.members.values() if m["user"]["id"] == user_id), None)

    def permissions(self, name: str) -> int:
        if self.users[name]["id"] == self.owner_id:
            return ALL
        total = int(self.roles["@everyone"]["permissions"])
        for role in self.roles.values():
            if role["id"] in self.member_roles[name]:
                total |= int(role["permissions"])
        return total


def _role(ident: str, name: str, permissions: int, position: int) -> dict[str, Any]:
    return {
        "id": ident,
        "name": name,
        "color": 0,
        "colors": {"primary_color": 0},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "position": position,
        "permissions": str(permissions),
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def _channel(ident: int, guild_id: str, name: str, position: int) -> dict[str, Any]:
    return {
        "id": str(ident),
        "type": 0,
        "guild_id": guild_id,
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "flags": 0,
    }


def _member(user_payload: dict[str, Any], roles: list[str]) -> dict[str, Any]:
    return {
        "user": user_payload,
        "roles": list(roles),
        "joined_at": now(),
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
        "avatar": None,
        "pending": False,
        "premium_since": None,
        "communication_disabled_until": None,
    }


def application(guild: FakeGuild) -> dict[str, Any]:
    return {
        "id": guild.users["bot"]["id"],
        "name": "modbot",
        "icon": None,
        "description": "",
        "bot_public": True,
        "bot_require_code_grant": False,
        "owner": guild.users["owner"],
        "team": None,
        "verify_key": "0" * 64,
        "flags": 0,
        "rpc_origins": [],
        "interactions_endpoint_url": None,
    }


def ready(bot: dict[str, Any], guilds: list[FakeGuild], gateway_url: str, shard: tuple[int, int]) -> dict[str, Any]:
    return {
        "v": 10,
        "user": bot,
        "guilds": [{"id": g.id, "unavailable": True} for g in guilds],
        "session_id": f"fake-session-{shard[0]}",
        "resume_gateway_url": gateway_url,
        "shard": list(shard),
        "application": {"id": bot["id"], "flags": 0},
        "private_channels": [],
        "relationships": [],
    }


def guild_create(guild: FakeGuild) -> dict[str, Any]:
    return {
        "id": guild.id,
        "name": guild.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": guild.owner_id,
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "features": [],
        "roles": list(guild.roles.values()),
        "channels": list(guild.channels.values()),
        "members": list(guild.members.values()),
        "member_count": len(guild.members),
        "emojis": [],
        "stickers": [],
        "threads": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "voice_states": [],
        "presences": [],
        "large": False,
        "unavailable": False,
        "joined_at": now(),
        "application_id": None,
        "soundboard_sounds": [],
    }


def message(
    guild: FakeGuild,
    ident: str,
    channel_id: str,
    author: dict[str, Any],
    content: str,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A message payload; ``body`` is what the bot sent when it created it (content, embeds, components ...)."""
    body = body or {}
    payload: dict[str, Any] = {
        "id": ident,
        "channel_id": channel_id,
        "guild_id": guild.id,
        "author": author,
        "content": body.get("content") or content,
        "timestamp": now(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": body.get("embeds") or [],
        "components": body.get("components") or [],
        "pinned": False,
        "type": 19 if body.get("message_reference") else 0,
        "flags": body.get("flags") or 0,
    }
    if body.get("message_reference"):
        payload["message_reference"] = body["message_reference"]
    member = guild.member_by_id(author["id"])
    if member is not None:
        payload["member"] = {k: v for k, v in member.items() if k != "user"}
    return payload


def interaction(
    guild: FakeGuild,
    ident: str,
    kind: int,
    data: dict[str, Any],
    user_name: str,
    channel: str,
    target_message: dict[str, Any] | None,
) -> dict[str, Any]:
    """An INTERACTION_CREATE payload from ``user_name`` in ``channel``."""
    member = dict(guild.members[user_name], permissions=str(guild.permissions(user_name)))
    payload: dict[str, Any] = {
        "id": ident,
        "application_id": guild.users["bot"]["id"],
        "type": kind,
        "data": data,
        "guild_id": guild.id,
        "guild": {"id": guild.id, "locale": "en-US", "features": []},
        "channel": guild.channels[channel],
        "channel_id": guild.channels[channel]["id"],
        "member": member,
        "token": f"itoken-{ident}",
        "version": 1,
        "app_permissions": str(guild.permissions("bot")),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": guild.id},
        "context": 0,
        "attachment_size_limit": 8 * 1024 * 1024,
    }
    if target_message is not None:
        payload["message"] = target_message
    return payload
