"""The REST routes of the fake Discord: each handler takes the recorded call and returns (status, json)."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from tests.fakes import _discord_payloads as payloads
from tests.fakes._discord_payloads import FakeGuild, now

DISCORD_EPOCH_MS = 1_420_070_400_000


@dataclass
class Call:
    """One REST request the client made."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    body: Any
    status: int = 0
    reason: str | None = None  # X-Audit-Log-Reason


class RestHandlers:
    """REST side of ``FakeDiscord`` (which provides these attributes)."""

    guild: FakeGuild
    guilds: list[FakeGuild]
    recommended_shards: int
    commands: dict[str, list[dict[str, Any]]]
    interactions: dict[str, dict[str, Any]]
    gateway_url: str
    dispatch: Callable[[str, dict[str, Any]], Coroutine[Any, Any, None]]
    _ids: itertools.count[int]
    _background: set[asyncio.Task[None]]

    def _snowflake(self) -> str:
        """A new id that, like Discord's, encodes the time it was made (and grows with every call)."""
        stamp = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        return str(max(stamp, payloads.SNOWFLAKE_BASE) + next(self._ids))

    def _me(self, call: Call) -> tuple[int, Any]:
        return 200, self.guild.users["bot"]

    def _application(self, call: Call) -> tuple[int, Any]:
        return 200, payloads.application(self.guild)

    def _gateway_bot(self, call: Call) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": self.recommended_shards,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
        }

    def _sync_commands(self, call: Call, app_id: str, guild_id: str | None = None) -> tuple[int, Any]:
        defaults = {"description": "", "options": [], "default_member_permissions": None, "nsfw": False}
        synced = [
            {**defaults, **c, "id": c.get("id") or self._snowflake(), "application_id": app_id, "version": "1"}
            for c in call.body
        ]
        if guild_id is not None:
            synced = [dict(c, guild_id=guild_id) for c in synced]
        self.commands[guild_id or "global"] = synced
        return 200, synced

    def _create_message(self, call: Call, channel_id: str) -> tuple[int, Any]:
        guild = self._guild_of(channel_id)
        message = payloads.message(guild, self._snowflake(), channel_id, guild.users["bot"], "", call.body)
        guild.messages[message["id"]] = message
        echo = asyncio.get_running_loop().create_task(self.dispatch("MESSAGE_CREATE", message))  # bots see own posts
        self._background.add(echo)
        echo.add_done_callback(self._background.discard)
        return 200, message

    def _get_message(self, call: Call, channel_id: str, message_id: str) -> tuple[int, Any]:
        message = self._guild_of(channel_id).messages.get(message_id)
        if message is None or message["channel_id"] != channel_id:
            return 404, {"message": "Unknown Message", "code": 10008}
        return 200, message

    def _history(self, call: Call, channel_id: str) -> tuple[int, Any]:
        """``GET /channels/{id}/messages``: newest first; ``after`` gives the oldest ones past it (as Discord)."""
        guild = self._guild_of(channel_id)
        limit = min(max(int(call.query.get("limit", 50)), 1), 100)
        found = [m for m in guild.messages.values() if m["channel_id"] == channel_id]
        found.sort(key=lambda m: int(m["id"]), reverse=True)
        if "before" in call.query:
            found = [m for m in found if int(m["id"]) < int(call.query["before"])]
        if "after" in call.query:
            found = [m for m in found if int(m["id"]) > int(call.query["after"])][-limit:]
        return 200, found[:limit]

    def _edit_message(self, call: Call, channel_id: str, message_id: str) -> tuple[int, Any]:
        status, message = self._get_message(call, channel_id, message_id)
        if status == 200:
            message.update({k: v for k, v in call.body.items() if k in ("content", "embeds", "components")})
            message["edited_timestamp"] = now()
        return status, message

    def _delete_message(self, call: Call, channel_id: str, message_id: str) -> tuple[int, Any]:
        status, message = self._get_message(call, channel_id, message_id)
        if status != 200:
            return status, message
        message["deleted"] = True
        del self._guild_of(channel_id).messages[message_id]
        return 204, None

    def _react(self, call: Call, channel_id: str, message_id: str, emoji: str) -> tuple[int, Any]:
        status, message = self._get_message(call, channel_id, message_id)
        return (204, None) if status == 200 else (status, message)

    def _get_member(self, call: Call, guild_id: str, user_id: str) -> tuple[int, Any]:
        member = self._guild(guild_id).member_by_id(user_id)
        return (200, member) if member else (404, {"message": "Unknown Member", "code": 10007})

    def _edit_member(self, call: Call, guild_id: str, user_id: str) -> tuple[int, Any]:
        status, member = self._get_member(call, guild_id, user_id)
        if status == 200 and "communication_disabled_until" in call.body:
            member["communication_disabled_until"] = call.body["communication_disabled_until"]
        return status, member

    def _get_channel(self, call: Call, channel_id: str) -> tuple[int, Any]:
        return 200, self._guild_of(channel_id).channels_by_id()[channel_id]

    def _interaction_callback(self, call: Call, interaction_id: str, token: str) -> tuple[int, Any]:
        kind = call.body["type"]
        data = call.body.get("data") or {}
        response: dict[str, Any] = {
            "interaction": {
                "id": interaction_id,
                "type": 2,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(data.get("flags", 0) & 64),
            }
        }
        if kind in (4, 5):
            message = payloads.message(
                self.guild, self._snowflake(), self.guild.channels["general"]["id"], self.guild.users["bot"], "", data
            )
            self.guild.interaction_messages[token] = message
            response["interaction"]["response_message_id"] = message["id"]
            response["resource"] = {"type": kind, "message": message}
        elif kind in (6, 7):  # (deferred) update of the message the clicked component is on
            message = self.guild.messages[self.interactions[token]["message"]["id"]]
            if kind == 7:
                message.update({k: v for k, v in data.items() if k in ("content", "embeds", "components")})
            self.guild.interaction_messages[token] = message
            response["resource"] = {"type": kind, "message": message}
        elif kind == 8:
            response["resource"] = {"type": kind}
        return 200, response

    def _webhook_message(self, call: Call, app_id: str, token: str, which: str | None = None) -> tuple[int, Any]:
        original = self.guild.interaction_messages.get(token)
        if which == "@original" and original is not None:
            if call.method == "PATCH":
                original.update({k: v for k, v in call.body.items() if k in ("content", "embeds", "components")})
            return 200, original
        body = call.body if isinstance(call.body, dict) else {}
        return 200, payloads.message(
            self.guild, self._snowflake(), self.guild.channels["general"]["id"], self.guild.users["bot"], "", body
        )

    def _guild_of(self, channel_id: str) -> FakeGuild:
        for guild in self.guilds:
            if channel_id in guild.channels_by_id():
                return guild
        raise KeyError("Channel")

    def _guild(self, guild_id: str) -> FakeGuild:
        for guild in self.guilds:
            if guild.id == guild_id:
                return guild
        raise KeyError("Guild")


_S = r"(\d+)"
ROUTES: list[tuple[str, re.Pattern[str], Callable[..., tuple[int, Any]]]] = [
    (method, re.compile(path), handler)
    for method, path, handler in [
        ("GET", r"/users/@me", RestHandlers._me),
        ("GET", r"/oauth2/applications/@me", RestHandlers._application),
        ("GET", r"/applications/@me", RestHandlers._application),
        ("GET", r"/gateway/bot", RestHandlers._gateway_bot),
        ("GET", r"/gateway", RestHandlers._gateway_bot),
        ("PUT", rf"/applications/{_S}/commands", RestHandlers._sync_commands),
        ("PUT", rf"/applications/{_S}/guilds/{_S}/commands", RestHandlers._sync_commands),
        ("GET", rf"/channels/{_S}", RestHandlers._get_channel),
        ("POST", rf"/channels/{_S}/messages", RestHandlers._create_message),
        ("GET", rf"/channels/{_S}/messages", RestHandlers._history),
        ("GET", rf"/channels/{_S}/messages/{_S}", RestHandlers._get_message),
        ("PATCH", rf"/channels/{_S}/messages/{_S}", RestHandlers._edit_message),
        ("DELETE", rf"/channels/{_S}/messages/{_S}", RestHandlers._delete_message),
        ("PUT", rf"/channels/{_S}/messages/{_S}/reactions/([^/]+)/@me", RestHandlers._react),
        ("GET", rf"/guilds/{_S}/members/{_S}", RestHandlers._get_member),
        ("PATCH", rf"/guilds/{_S}/members/{_S}", RestHandlers._edit_member),
        ("POST", rf"/interactions/{_S}/([^/]+)/callback", RestHandlers._interaction_callback),
        ("POST", rf"/webhooks/{_S}/([^/]+)", RestHandlers._webhook_message),
        ("GET", rf"/webhooks/{_S}/([^/]+)/messages/(@original|\d+)", RestHandlers._webhook_message),
        ("PATCH", rf"/webhooks/{_S}/([^/]+)/messages/(@original|\d+)", RestHandlers._webhook_message),
    ]
]
