"""Discord adapter: ``serve()`` runs the bot until ``stop`` is set; ``ModerationBot`` wires events and commands.

The work lives in private modules: ``_moderation`` (messages -> decisions -> actions), ``_actions``
(what Discord answered), ``_modlog`` and ``_review`` (the mod-log and its buttons),
``_classify`` and ``_admin`` (slash commands of the shared command surface), ``_render`` (its replies as embeds),
``_convert`` (Discord -> core types).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import Sequence
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot.adapters.discord_bot._actions import carry_out, stored_message
from bot.adapters.discord_bot._admin import register_admin
from bot.adapters.discord_bot._classify import register_classify
from bot.adapters.discord_bot._convert import PLATFORM
from bot.adapters.discord_bot._dashboard import DiscordPlatform, register_dashboard
from bot.adapters.discord_bot._intake import DiscordIntake
from bot.adapters.discord_bot._interactions import on_app_command_error
from bot.adapters.discord_bot._moderation import Moderator
from bot.adapters.discord_bot._modlog import ModLog
from bot.adapters.discord_bot._review import ReviewButton
from bot.config import Settings
from bot.core.dashboard_access import LinkMaker
from bot.core.moderation import ModerationService
from bot.core.outbox import PendingAction
from bot.core.platforms import Platforms
from bot.core.records import ActionReport

_log = logging.getLogger(__name__)

MAX_RATELIMIT_WAIT = 30.0  # longer rate limits fail the one action (logged) instead of stalling every later one
LOGIN_RETRY_MAX = 60.0  # seconds between attempts to reach Discord at start-up


def configure_endpoints(api_base_url: str | None, gateway_url: str | None) -> None:
    """Point discord.py at a REST proxy or a test server.

    discord.py keeps both as class attributes, so this is process-wide. ``api_base_url`` may end in ``/api/vN``;
    without it the API version discord.py speaks is appended.
    """
    if api_base_url:
        base = api_base_url.rstrip("/")
        if not re.search(r"/api/v\d+$", base):
            base += f"/api/v{discord.http.INTERNAL_API_VERSION}"
        discord.http.Route.BASE = base
    if gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


class ModerationBot(discord.AutoShardedClient):
    """The Discord client: automatic moderation on messages and edits, slash commands, mod-log review buttons.

    Sharded: ``shard_count`` and ``shard_ids`` run a subset of the shards in this process (processes running the
    other shards share the database); without them discord.py asks Discord how many shards to run, all here.
    """

    def __init__(
        self,
        service: ModerationService,
        *,
        guild_ids: Sequence[int] = (),
        settings: Settings | None = None,
        dashboard: LinkMaker | None = None,
        **options: Any,
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable it for the application in the developer portal
        options.setdefault("max_ratelimit_timeout", MAX_RATELIMIT_WAIT)
        options.setdefault("allowed_mentions", discord.AllowedMentions(everyone=False, roles=False, users=True))
        super().__init__(intents=intents, **options)
        self.service = service  # read by the review buttons through ``interaction.client``
        self.guild_ids = tuple(guild_ids)
        self.tree = app_commands.CommandTree(self)
        self.tree.on_error = on_app_command_error
        self.moderator = Moderator(service, ModLog(service))
        self.dashboard_links = dashboard
        settings = settings or Settings()
        self.grace = settings.stop_grace * 0.6  # of the stop grace, for messages in flight; the rest for closing
        self.inbox = DiscordIntake(
            service.intake,
            self,
            self.moderator.moderate,
            window=dt.timedelta(minutes=settings.discord_catchup_minutes),
            max_messages=settings.discord_catchup_messages,
        )
        self._stop_intake = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []

    async def setup_hook(self) -> None:
        self.inbox.start(self._stop_intake, grace=self.grace)
        self._workers = [
            asyncio.create_task(
                self.service.retry_actions(PLATFORM, self._carry_out_again, self._stop_intake), name="discord-retry"
            ),
        ]
        register_classify(self.tree, self.service)
        register_admin(self.tree, self.service)
        register_dashboard(self.tree, self.service, self.dashboard_links)
        self.add_dynamic_items(ReviewButton)
        if self.shard_ids is None or 0 in self.shard_ids:  # commands are per application: one process syncs them
            await self.sync_commands()

    async def sync_commands(self) -> None:
        """Globally (can take a while to show up), or to ``guild_ids`` only (instant; for testing a bot)."""
        try:
            if not self.guild_ids:
                synced = await self.tree.sync()
                _log.info("synced %d global commands", len(synced))
            for guild_id in self.guild_ids:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
                _log.info("synced %d commands to server %s", len(synced), guild_id)
        except discord.HTTPException as error:
            _log.error("command sync failed (HTTP %s %s); the last synced commands stay", error.status, error.text)

    async def close(self) -> None:
        """Stop intake, finish the messages being moderated (within the grace; the rest stay in the inbox), then
        disconnect."""
        self._stop_intake.set()
        await asyncio.gather(*self._workers, self.inbox.wait_stopped(), return_exceptions=True)
        await super().close()

    async def _carry_out_again(self, action: PendingAction) -> ActionReport:
        """A logged decision whose action a crash cut short, or that failed for a passing reason."""
        message = await stored_message(self, action)
        if message is None:
            return ActionReport(False, "not done: the message's channel is unknown or gone")
        result = await carry_out(message, action)  # type: ignore[arg-type]
        _log.info("event %s: %s (again) -> %s", action.event_id, action.action, result.text)
        return result.report

    async def on_ready(self) -> None:
        """Connected (again): what was posted meanwhile is read from each channel's history and moderated."""
        _log.info(
            "connected to Discord as %s (%s), in %d servers, shards %s of %s",
            self.user,
            self.user and self.user.id,
            len(self.guilds),
            ",".join(str(shard) for shard in sorted(self.shards)),
            self.shard_count,
        )
        await self.inbox.catch_up()

    async def on_message(self, message: discord.Message) -> None:
        if self.moderator.wants(message):
            await self.inbox.receive(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        message = payload.message
        before = payload.cached_message
        if message.edited_at is None or (before is not None and before.content == message.content):
            return  # only embeds changed: a link preview is not an edit
        if self.moderator.wants(message):
            await self.inbox.receive(message, edited=True)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        _log.info("removed from server %s (%s)", guild.name, guild.id)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        """One bad event is logged; discord.py keeps the gateway running."""
        _log.exception("unhandled error in %s; the bot keeps running", event_method)


async def serve(
    service: ModerationService,
    settings: Settings,
    stop: asyncio.Event,
    *,
    platforms: Platforms | None = None,
    dashboard: LinkMaker | None = None,
) -> None:
    """Connect to Discord with ``DISCORD_TOKEN`` and moderate until ``stop`` is set.

    ``platforms``: where the web dashboard finds Discord while it runs; ``dashboard``: makes ``/dashboard``'s links.
    """
    if settings.discord_token is None:
        raise ValueError("DISCORD_TOKEN is not set")
    configure_endpoints(settings.discord_api_base_url, settings.discord_gateway_url)
    bot = ModerationBot(
        service,
        guild_ids=settings.guild_ids,
        settings=settings,
        shard_count=settings.discord_shard_count,
        shard_ids=settings.shard_ids,
        dashboard=dashboard,
    )
    if platforms is not None:
        platforms.register("discord", DiscordPlatform(bot))
    try:
        await run_until(bot, settings.discord_token.get_secret_value(), stop)
    finally:
        if platforms is not None:
            platforms.unregister("discord")


async def run_until(bot: discord.Client, token: str, stop: asyncio.Event) -> None:
    """Run ``bot`` until ``stop`` is set, then close it. A rejected token is raised; an unreachable Discord is
    waited for (with a growing wait), so it never takes the other platforms of the process down with it."""
    async with bot:
        if not await _login(bot, token, stop):
            return
        runner = asyncio.create_task(bot.connect(reconnect=True), name="discord-client")
        stopping = asyncio.create_task(stop.wait(), name="discord-stop")
        try:
            await asyncio.wait({runner, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not runner.done():
                await bot.close()
            await runner


async def _login(bot: discord.Client, token: str, stop: asyncio.Event) -> bool:
    """``bot.login``, retried while Discord cannot be reached; False when stopped meanwhile."""
    delay = 1.0
    while not stop.is_set():
        try:
            await bot.login(token)
            return True
        except discord.LoginFailure:
            raise
        except (OSError, aiohttp.ClientError, discord.GatewayNotFound) as error:
            _log.warning("cannot reach Discord (%s); retrying in %.0f s", error or type(error).__name__, delay)
        except discord.HTTPException as error:
            if error.status < 500:
                raise
            _log.warning("Discord answered HTTP %s at login; retrying in %.0f s", error.status, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, LOGIN_RETRY_MAX)
    return False
