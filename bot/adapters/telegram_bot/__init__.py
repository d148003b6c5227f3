"""Telegram adapter: builds the python-telegram-bot Application, registers the handlers and serves until stopped.

Started and stopped explicitly (not ``run_polling``) so it can share one event loop with the Discord adapter.
Polling by default; webhook mode when ``TELEGRAM_WEBHOOK_URL`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from functools import partial
from urllib.parse import urlparse

from telegram import BotCommandScopeAllChatAdministrators, BotCommandScopeDefault, MessageEntity, Update
from telegram import Message as TgMessage
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.adapters.telegram_bot._actions import ActionTaker
from bot.adapters.telegram_bot._admins import AdminCache
from bot.adapters.telegram_bot._commands import ADMIN_COMMANDS, PUBLIC_COMMANDS, Commands
from bot.adapters.telegram_bot._convert import PLATFORM
from bot.adapters.telegram_bot._dashboard import DashboardCommand, TelegramPlatform
from bot.adapters.telegram_bot._intake import note_handler_error, poll, process
from bot.adapters.telegram_bot._moderation import Moderation
from bot.adapters.telegram_bot._render import FEEDBACK_PREFIX
from bot.adapters.telegram_bot._retry import call_api
from bot.config import Settings
from bot.core.command_text import COMMANDS
from bot.core.commands import Commands as CoreCommands
from bot.core.dashboard_access import LinkMaker
from bot.core.moderation import ModerationService
from bot.core.platforms import Platforms

log = logging.getLogger(__name__)

CONCURRENT_UPDATES = 64  # lets the classifier batch messages from many chats into one forward pass
START_RETRY_MAX = 60.0  # seconds between attempts to reach Telegram at start-up
MODERATION = "moderation"
INTAKE_SHARE_OF_GRACE = 0.6  # of the stop grace, for messages in flight; the rest is for closing connections


class TelegramConfigError(RuntimeError):
    """The Telegram settings cannot work (missing or rejected token)."""


def build_application(
    service: ModerationService, settings: Settings, *, admin_ttl: float = 60.0, dashboard: LinkMaker | None = None
) -> Application:
    """The Application with every handler registered; nothing is contacted yet. ``dashboard``: makes the links
    ``/dashboard`` sends (None: the dashboard is off and ``/dashboard`` says so)."""
    if settings.telegram_token is None:
        raise TelegramConfigError("TELEGRAM_TOKEN is not set")
    builder = ApplicationBuilder().token(settings.telegram_token.get_secret_value())
    if settings.telegram_api_base_url:
        base = settings.telegram_api_base_url.rstrip("/").removesuffix("/bot")  # the server's root, either form
        builder = builder.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
    if not settings.telegram_webhook_url:
        builder = builder.get_updates_read_timeout(30.0)  # above the 10 s long-poll timeout
    application = builder.concurrent_updates(CONCURRENT_UPDATES).build()

    admins = AdminCache(ttl=admin_ttl)
    commands = Commands(service, admins)
    actions = ActionTaker(admins)
    moderation = Moderation(service, admins, actions)
    application.bot_data["platform"] = TelegramPlatform(application.bot, admins, actions)
    application.bot_data[MODERATION] = moderation  # serve() hands it the actions to carry out again
    new_messages = filters.UpdateType.MESSAGE
    # only the bot's own commands are commands: "/x you idiot" or "/classify@otherbot ..." is a message to moderate
    own_command = new_messages & OwnCommand(["start", "help", "dashboard", *COMMANDS])
    application.add_handlers(
        [
            CommandHandler(["start", "help"], commands.help, filters=new_messages),
            CommandHandler(list(COMMANDS), commands.command, filters=new_messages),
            CommandHandler(
                "dashboard", DashboardCommand(CoreCommands(service), dashboard, admins), filters=new_messages
            ),
            CallbackQueryHandler(moderation.on_feedback, pattern=rf"^{FEEDBACK_PREFIX}:"),
            MessageHandler(
                filters.ChatType.GROUPS & (filters.TEXT | filters.CAPTION) & ~own_command,
                moderation.on_group_message,
            ),
            MessageHandler(
                filters.ChatType.PRIVATE & new_messages & filters.TEXT & ~own_command, commands.private_text
            ),
        ]
    )
    application.add_error_handler(_log_error)
    return application


async def serve(
    service: ModerationService,
    settings: Settings,
    stop: asyncio.Event,
    *,
    platforms: Platforms | None = None,
    dashboard: LinkMaker | None = None,
) -> None:
    """Connect to Telegram, handle updates until ``stop`` is set, then shut down gracefully.

    ``platforms``: where the dashboard finds Telegram while it is connected; ``dashboard``: see build_application.
    """
    token = settings.telegram_token.get_secret_value() if settings.telegram_token else ""
    with _token_redacted(token):  # before the Bot exists: it logs its API URL, token included, at DEBUG
        application = build_application(service, settings, dashboard=dashboard)
        if await _initialize(application, stop):
            if platforms is not None:
                platforms.register("telegram", application.bot_data["platform"])
            try:
                await _serve_initialized(application, service, settings, stop)
            finally:
                if platforms is not None:
                    platforms.unregister("telegram")


async def _serve_initialized(
    application: Application, service: ModerationService, settings: Settings, stop: asyncio.Event
) -> None:
    workers: list[asyncio.Task[None]] = []
    try:
        await application.start()
        await _set_commands(application)
        if settings.telegram_webhook_url:
            await _start_webhook(application, settings)
        else:
            # durable intake: updates are stored before the offset moves, and handled from the inbox
            intake = service.intake(PLATFORM, concurrency=CONCURRENT_UPDATES)
            grace = settings.stop_grace * INTAKE_SHARE_OF_GRACE
            workers = [
                asyncio.create_task(poll(application.bot, intake, stop, allowed_updates=Update.ALL_TYPES)),
                asyncio.create_task(intake.run(partial(process, application), stop, grace=grace)),
                asyncio.create_task(
                    service.retry_actions(
                        PLATFORM, partial(application.bot_data[MODERATION].retry, application.bot), stop
                    )
                ),
            ]
        log.info("telegram: serving as @%s", application.bot.username)
        await stop.wait()
        await asyncio.gather(*workers)
    finally:
        log.info("telegram: stopping")
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()


async def _initialize(application: Application, stop: asyncio.Event) -> bool:
    """``application.initialize()`` (getMe), retried while Telegram is unreachable; False if stopped meanwhile."""
    delay = 1.0
    while not stop.is_set():
        try:
            await application.initialize()
            return True
        except InvalidToken:  # its message quotes the token: never pass it on
            raise TelegramConfigError("Telegram rejected TELEGRAM_TOKEN: check it with @BotFather") from None
        except NetworkError as error:
            log.warning("telegram: cannot reach the Bot API (%s); retrying in %.0f s", error, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=delay)
        delay = min(delay * 2, START_RETRY_MAX)
    return False


async def _set_commands(application: Application) -> None:
    """Command menus: everyone sees /classify, chat admins see the admin commands too."""
    bot = application.bot
    try:
        await call_api(bot.set_my_commands, PUBLIC_COMMANDS, scope=BotCommandScopeDefault())
        await call_api(bot.set_my_commands, ADMIN_COMMANDS, scope=BotCommandScopeAllChatAdministrators())
    except TelegramError as error:  # the menu is a convenience: never a reason not to serve
        log.warning("telegram: setMyCommands failed: %s", error)


async def _start_webhook(application: Application, settings: Settings) -> None:
    url = settings.telegram_webhook_url or ""
    secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else None
    await application.updater.start_webhook(  # type: ignore[union-attr]
        listen=settings.telegram_webhook_listen,
        port=settings.telegram_webhook_port,
        url_path=urlparse(url).path.lstrip("/"),
        webhook_url=url,
        secret_token=secret,
        allowed_updates=Update.ALL_TYPES,
    )


@contextlib.contextmanager
def _token_redacted(token: str) -> Iterator[None]:
    """Keep the token out of every log line: PTB logs its API URL and httpx logs each request's URL."""
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger("httpx").getEffectiveLevel()))
    if not token:
        yield
        return
    redact = _Redact(token)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redact)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(redact)


class _Redact(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._secret in message:
            record.msg, record.args = message.replace(self._secret, "<TELEGRAM_TOKEN>"), None
        if record.exc_info and not record.exc_text:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = text.replace(self._secret, "<TELEGRAM_TOKEN>")
        return True


async def _log_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log first: a failing handler must never stop the bot; its update stays in the inbox for another attempt."""
    log.error("telegram: error while handling an update", exc_info=context.error)
    note_handler_error(context.error)


class OwnCommand(filters.MessageFilter):
    """A message that starts with one of this bot's commands (``/name`` or ``/name@this_bot``), nothing else."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(name="OwnCommand")
        self._names = frozenset(name.lower() for name in names)

    def filter(self, message: TgMessage) -> bool:
        entities = message.entities or ()
        if not entities or entities[0].type != MessageEntity.BOT_COMMAND or entities[0].offset != 0:
            return False
        word = (message.text or "")[1 : entities[0].length]
        name, _, addressee = word.partition("@")
        if addressee and addressee.lower() != (message.get_bot().username or "").lower():
            return False
        return name.lower() in self._names
