"""A fake Discord (REST + gateway) on 127.0.0.1 for end-to-end tests of the real discord.py client.

By default it holds one guild with two text channels (``general``, ``mod-log``), three roles and three members (the
bot, an admin with Manage Server, a plain member), answers the REST routes the bot uses, records every call, and lets a
test inject gateway dispatches (messages, edits, interactions) and make a route fail with 403, 404 or 429.

Sharding: ``FakeDiscord(guilds=40, shards=2)`` holds 40 such guilds and recommends 2 shards at ``GET /gateway/bot``.
A session that IDENTIFYs with ``shard: [id, count]`` gets READY and GUILD_CREATE for the guilds with
``(guild_id >> 22) % count == id`` only, and a guild's dispatches go to the sessions of its shard, as Discord does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes import _discord_payloads as payloads
from tests.fakes._discord_payloads import FakeGuild, now
from tests.fakes._discord_rest import ROUTES, Call, RestHandlers

API_PREFIX = "/api/v10"
DEFAULT_WAIT = 20.0  # seconds; generous because CI machines can be busy, still bounded
ERRORS: dict[int, tuple[str, int]] = {
    403: ("Missing Permissions", 50013),
    404: ("Unknown Message", 10008),
    500: ("Internal Server Error", 0),
}


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int | None  # None: until cleared
    retry_after: float
    code: int | None  # Discord's JSON error code, else the usual one for the status


@dataclass
class _Session:
    ws: web.WebSocketResponse
    identified: asyncio.Event = field(default_factory=asyncio.Event)
    intents: int = 0
    shard: tuple[int, int] = (0, 1)

    def receives(self, guild_id: str | None) -> bool:
        return guild_id is None or (int(guild_id) >> 22) % self.shard[1] == self.shard[0]


class FakeDiscord(RestHandlers):
    """The server. ``async with FakeDiscord() as fake:`` binds a free port on 127.0.0.1."""

    def __init__(self, *, guilds: int = 1, shards: int = 1, extra_members: int = 0) -> None:
        self.guilds = [FakeGuild.build(index, extra_members=extra_members) for index in range(guilds)]
        self.guild = self.guilds[0]
        self.recommended_shards = shards
        self.calls: list[Call] = []
        self.identifies: list[dict[str, Any]] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or guild id -> last synced commands
        self.interactions: dict[str, dict[str, Any]] = {}  # token -> INTERACTION_CREATE payload
        self._failures: list[_Failure] = []
        self._sessions: list[_Session] = []
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._background: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeDiscord:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for session in list(self._sessions):
            await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- test controls ---------------------------------------------------------------------------------------------
    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        times: int | None = None,
        retry_after: float = 0.05,
        code: int | None = None,
    ) -> None:
        """Make ``method path`` answer ``status`` (403, 404, 429 ...) ``times`` times, or until ``clear_failures``.

        ``code`` is Discord's error code in the body (404 defaults to 10008 Unknown Message; 10004 is Unknown Guild).
        """
        self._failures.append(_Failure(method.upper(), re.compile(path_regex), status, times, retry_after, code))

    def clear_failures(self) -> None:
        self._failures.clear()

    async def wait_for(self, predicate: Callable[[], Any], within: float = DEFAULT_WAIT) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked after every request and gateway event)."""

        async def until() -> Any:
            async with self._changed:
                while not (result := predicate()):
                    await self._changed.wait()
                return result

        return await asyncio.wait_for(until(), within)

    async def wait_for_call(
        self, method: str, path_regex: str, *, within: float = DEFAULT_WAIT, after: int = 0
    ) -> Call:
        """The first recorded call (from index ``after``) matching ``method`` and ``path_regex`` (full match)."""
        pattern = re.compile(path_regex)

        def found() -> Call | None:
            return next((c for c in self.calls[after:] if c.method == method and pattern.fullmatch(c.path)), None)

        return await self.wait_for(found, within)

    def find_calls(self, method: str, path_regex: str, *, after: int = 0) -> list[Call]:
        pattern = re.compile(path_regex)
        return [c for c in self.calls[after:] if c.method == method and pattern.fullmatch(c.path)]

    async def wait_identified(self, within: float = DEFAULT_WAIT) -> None:
        await self.wait_for(lambda: any(s.identified.is_set() for s in self._sessions), within)

    async def wait_shards(self, count: int, within: float = DEFAULT_WAIT) -> None:
        """Wait until every shard of ``count`` has an identified session."""

        def all_up() -> bool:
            up = {s.shard for s in self._sessions if s.identified.is_set() and not s.ws.closed}
            return up >= {(shard, count) for shard in range(count)}

        await self.wait_for(all_up, within)

    def shards_identified(self) -> list[tuple[int, int]]:
        """``[id, count]`` of every IDENTIFY so far, in order."""
        return [tuple(identify.get("shard") or (0, 1)) for identify in self.identifies]  # type: ignore[misc]

    def guild_by_id(self, guild_id: str) -> FakeGuild:
        for guild in self.guilds:
            if guild.id == guild_id:
                return guild
        raise KeyError("Guild")

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway dispatch to every identified session of the shard of ``data``'s guild."""
        guild_id = data.get("guild_id") if isinstance(data, dict) else None
        sessions = [s for s in self._sessions if s.identified.is_set() and not s.ws.closed and s.receives(guild_id)]
        if not sessions:
            raise RuntimeError(f"no identified gateway session to dispatch to (guild {guild_id})")
        for session in sessions:
            await session.ws.send_str(json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data}))

    async def send_message(
        self,
        content: str,
        *,
        author: str = "member",
        channel: str = "general",
        guild: FakeGuild | None = None,
        dispatch: bool = True,
    ) -> dict[str, Any]:
        """A user posts ``content`` (in ``guild``, default the first): stored and dispatched as MESSAGE_CREATE.

        ``dispatch=False`` only stores it: a message posted while the bot was not connected (history has it).
        """
        guild = guild or self.guild
        channel_id = guild.channels[channel]["id"]
        message = payloads.message(guild, self._snowflake(), channel_id, guild.users[author], content)
        guild.messages[message["id"]] = message
        if dispatch:
            await self.dispatch("MESSAGE_CREATE", message)
        return message

    async def edit_message(self, message: dict[str, Any], content: str) -> dict[str, Any]:
        """A user edits a stored message: dispatched as MESSAGE_UPDATE."""
        edited = dict(message, content=content, edited_timestamp=now())
        self.guild_by_id(message["guild_id"]).messages[edited["id"]] = edited
        await self.dispatch("MESSAGE_UPDATE", edited)
        return edited

    async def slash(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        user: str = "member",
        channel: str = "general",
        kind: int = 2,
        resolved: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A user runs an application command (``kind`` 2) or types in its autocomplete (``kind`` 4).

        ``resolved`` carries the users, members and channels that options refer to (see ``resolve``).
        """
        data = {"id": self._command_id(name, 1), "name": name, "type": 1, "options": options or []}
        if resolved:
            data["resolved"] = resolved
        return await self._interact(kind, data, user=user, channel=channel)

    def resolve(self, *, member: str | None = None, channel: str | None = None) -> dict[str, Any]:
        """The ``resolved`` part of an interaction for an option naming ``member`` or ``channel``."""
        resolved: dict[str, Any] = {}
        if member is not None:
            user = self.guild.users[member]
            fields = {k: v for k, v in self.guild.members[member].items() if k != "user"}
            resolved["users"] = {user["id"]: user}
            resolved["members"] = {user["id"]: dict(fields, permissions=str(self.guild.permissions(member)))}
        if channel is not None:
            data = self.guild.channels[channel]
            resolved["channels"] = {data["id"]: dict(data, permissions=str(payloads.EVERYONE))}
        return resolved

    async def message_command(self, name: str, target: dict[str, Any], *, user: str = "member") -> dict[str, Any]:
        """A user runs a message context-menu command on ``target``."""
        data = {
            "id": self._command_id(name, 3),
            "name": name,
            "type": 3,
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: target}},
        }
        channel = next(n for n, c in self.guild.channels.items() if c["id"] == target["channel_id"])
        return await self._interact(2, data, user=user, channel=channel)

    async def click(self, message: dict[str, Any], custom_id: str, *, user: str = "admin") -> dict[str, Any]:
        """A user clicks the button ``custom_id`` on a message the bot posted."""
        data = {"custom_id": custom_id, "component_type": 2}
        channel = next(n for n, c in self.guild.channels.items() if c["id"] == message["channel_id"])
        return await self._interact(3, data, user=user, channel=channel, message=message)

    def replies(self, interaction: dict[str, Any]) -> list[dict[str, Any]]:
        """What the bot answered to ``interaction``: callback data, edits of the original and follow-ups, in order."""
        token = interaction["token"]
        out = []
        for call in self.calls:
            if call.status >= 300:
                continue
            if call.method == "POST" and call.path == f"/interactions/{interaction['id']}/{token}/callback":
                out.append({"type": call.body["type"], **(call.body.get("data") or {})})
            elif token in call.path and call.path.startswith("/webhooks/") and call.method in ("POST", "PATCH"):
                out.append(dict(call.body or {}))
        return out

    async def wait_reply(
        self,
        interaction: dict[str, Any],
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        within: float = DEFAULT_WAIT,
    ) -> dict[str, Any]:
        """The first reply to ``interaction`` carrying content or embeds (and matching ``predicate``)."""

        def found() -> dict[str, Any] | None:
            for reply in self.replies(interaction):
                if (reply.get("content") or reply.get("embeds") or reply.get("choices") is not None) and (
                    predicate is None or predicate(reply)
                ):
                    return reply
            return None

        return await self.wait_for(found, within)

    def channel_posts(self, channel: str) -> list[dict[str, Any]]:
        """Messages the bot created in ``channel``."""
        cid = self.guild.channels[channel]["id"]
        return [m for m in self.guild.messages.values() if m["channel_id"] == cid and m["author"]["bot"]]

    # -- internals -------------------------------------------------------------------------------------------------
    def _command_id(self, name: str, kind: int) -> str:
        for commands in self.commands.values():
            for command in commands:
                if command["name"] == name and command.get("type", 1) == kind:
                    return command["id"]
        raise KeyError(f"command {name!r} was never synced (synced: {self.commands})")

    async def _interact(
        self, kind: int, data: dict[str, Any], *, user: str, channel: str, message: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        synced_in_guild = any(c["name"] == data.get("name") for c in self.commands.get(self.guild.id, []))
        if synced_in_guild:
            data["guild_id"] = self.guild.id
        interaction = payloads.interaction(self.guild, self._snowflake(), kind, data, user, channel, message)
        self.interactions[interaction["token"]] = interaction
        await self.dispatch("INTERACTION_CREATE", interaction)
        return interaction

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = _Session(ws)
        self._sessions.append(session)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 45000}})
        try:
            async for frame in ws:
                if frame.type != WSMsgType.TEXT:
                    continue
                await self._on_gateway_frame(session, json.loads(frame.data))
        finally:
            self._sessions.remove(session)
            await self._notify()
        return ws

    async def _on_gateway_frame(self, session: _Session, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op == 1:  # heartbeat
            await session.ws.send_json({"op": 11})
        elif op == 2:  # identify
            self.identifies.append(frame["d"])
            session.intents = int(frame["d"].get("intents", 0))
            shard_id, count = frame["d"].get("shard") or (0, 1)
            session.shard = (int(shard_id), int(count))
            guilds = [guild for guild in self.guilds if session.receives(guild.id)]
            ready = payloads.ready(self.guild.users["bot"], guilds, self.gateway_url, session.shard)
            await session.ws.send_json({"op": 0, "t": "READY", "s": next(self._seq), "d": ready})
            for guild in guilds:
                created = payloads.guild_create(guild)
                await session.ws.send_json({"op": 0, "t": "GUILD_CREATE", "s": next(self._seq), "d": created})
            session.identified.set()
        elif op == 6:  # resume: this fake keeps no sessions, so ask for a fresh identify
            await session.ws.send_json({"op": 9, "d": False})
        await self._notify()

    async def _rest(self, request: web.Request) -> web.Response:
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            body = (
                json.loads(raw) if request.content_type == "application/json" and raw else raw.decode(errors="replace")
            )
        call = Call(request.method, path, dict(request.query), body, reason=request.headers.get("X-Audit-Log-Reason"))
        self.calls.append(call)
        try:
            status, answer, headers = self._injected_failure(call) or self._route(call)
        except KeyError as error:
            status, answer, headers = 404, {"message": f"Unknown {error}", "code": 10003}, {}
        call.status = status
        await self._notify()
        if status == 204:
            return web.Response(status=204)
        text = json.dumps(answer)
        return web.Response(status=status, body=text.encode(), headers={"Content-Type": "application/json", **headers})

    def _injected_failure(self, call: Call) -> tuple[int, Any, dict[str, str]] | None:
        for failure in self._failures:
            if failure.method == call.method and failure.pattern.fullmatch(call.path):
                if failure.times is not None:
                    failure.times -= 1
                    if failure.times <= 0:
                        self._failures.remove(failure)
                if failure.status == 429:
                    headers = {
                        "Via": "1.1 google",
                        "Retry-After": str(failure.retry_after),
                        "X-RateLimit-Scope": "user",
                    }
                    return (
                        429,
                        {"message": "You are being rate limited.", "retry_after": failure.retry_after, "global": False},
                        headers,
                    )
                message, code = ERRORS.get(failure.status, ("Error", 0))
                return failure.status, {"message": message, "code": failure.code or code}, {}
        return None

    def _route(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        for method, pattern, handler in ROUTES:
            if method == call.method and (match := pattern.fullmatch(call.path)):
                status, answer = handler(self, call, *match.groups())
                return status, answer, {}
        return 404, {"message": f"fake Discord has no route {call.method} {call.path}", "code": 0}, {}
