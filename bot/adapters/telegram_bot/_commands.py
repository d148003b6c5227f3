"""Slash commands: /classify for everyone; /model, /settings, /threshold, /action, /stats for chat admins."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from html import escape

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.adapters.telegram_bot._admins import AdminCache
from bot.adapters.telegram_bot._convert import GROUP_TYPES, actor, chat_ref, is_anonymous_admin, message_text
from bot.adapters.telegram_bot._render import classification_html, models_html, settings_html, split_html, stats_html
from bot.adapters.telegram_bot._retry import call_api
from bot.core.errors import BotError
from bot.core.moderation import ModerationService
from bot.core.types import Actor

log = logging.getLogger(__name__)

PUBLIC_COMMANDS = (
    BotCommand("classify", "Score a text (or reply to a message) on each label; /classify explain TEXT says why"),
)
ADMIN_COMMANDS = (
    *PUBLIC_COMMANDS,
    BotCommand("model", "List the models, or switch this chat's model: /model NAME"),
    BotCommand("settings", "Show this chat's moderation settings"),
    BotCommand("threshold", "Set a label's threshold: /threshold LABEL VALUE"),
    BotCommand("action", "What to do over threshold: /action flag|delete|warn|timeout"),
    BotCommand("stats", "Moderation statistics of this chat"),
    BotCommand("dashboard", "A private link to this chat's web dashboard"),
)
HELP = (
    "I score messages on six toxicity labels and moderate groups as their admins configure.\n"
    "<code>/classify TEXT</code> (or reply <code>/classify</code> to a message) shows the scores.\n"
    "Group admins: <code>/model</code>, <code>/settings</code>, <code>/threshold LABEL VALUE</code>, "
    "<code>/action ACTION</code>, <code>/stats</code>, <code>/dashboard</code>."
)
Context = ContextTypes.DEFAULT_TYPE


class Commands:
    """Command handlers sharing the moderation service and the admin cache."""

    def __init__(self, service: ModerationService, admins: AdminCache) -> None:
        self._service = service
        self._admins = admins

    async def help(self, update: Update, context: Context) -> None:
        """/start and /help."""
        await _reply(update, HELP)

    async def classify(self, update: Update, context: Context) -> None:
        """/classify TEXT, or /classify as a reply: the per-label table; ``/classify explain ...`` adds the words
        that drove the score."""
        message = update.effective_message
        assert message is not None
        args = list(context.args or [])
        explain = bool(args) and args[0].lower() == "explain"
        text = " ".join(args[1:] if explain else args)
        if not text and message.reply_to_message is not None:
            text = message_text(message.reply_to_message)
        if not text.strip():
            await _reply(
                update, "Usage: <code>/classify [explain] TEXT</code>, or reply <code>/classify</code> to a message."
            )
            return
        await self.reply_classification(update, text, explain=explain)

    async def private_text(self, update: Update, context: Context) -> None:
        """Any text sent to the bot in a private chat: the table."""
        assert update.effective_message is not None
        await self.reply_classification(update, message_text(update.effective_message))

    async def reply_classification(self, update: Update, text: str, *, explain: bool = False) -> None:
        """Classify ``text`` with the chat's model and reply with the table (and why, when asked)."""
        assert update.effective_chat is not None
        try:
            result = await self._service.classify(text, chat=chat_ref(update.effective_chat.id))
            why = await self._service.explain(text, result) if explain else None
        except BotError as error:
            await _reply_plain(update, str(error))
            return
        await _reply(update, classification_html(result, text, why))

    async def model(self, update: Update, context: Context) -> None:
        """/model lists the models; /model NAME switches this chat's model (admins)."""
        if (admin := await self._require_admin(update)) is None:
            return
        chat = chat_ref(update.effective_chat.id)  # type: ignore[union-attr]
        if context.args:
            name = context.args[0]
            if await self._apply(update, self._service.set_model(chat, admin, name)):
                await _reply(update, f"This chat now uses <code>{escape(name)}</code>.")
            return
        settings = await self._service.settings(chat)
        await _reply(update, models_html(self._service.models(), self._service.effective_model(settings)))

    async def settings(self, update: Update, context: Context) -> None:
        """/settings: this chat's moderation settings (admins)."""
        if await self._require_admin(update) is None:
            return
        settings = await self._service.settings(chat_ref(update.effective_chat.id))  # type: ignore[union-attr]
        spec = self._service.registry.get(self._service.effective_model(settings))
        await _reply(update, settings_html(settings, spec))

    async def threshold(self, update: Update, context: Context) -> None:
        """/threshold LABEL VALUE (admins)."""
        if (admin := await self._require_admin(update)) is None:
            return
        args = context.args or []
        try:
            label, value = args[0], float(args[1])
        except (IndexError, ValueError):
            await _reply(update, "Usage: <code>/threshold LABEL VALUE</code>, VALUE between 0 and 1.")
            return
        chat = chat_ref(update.effective_chat.id)  # type: ignore[union-attr]
        if await self._apply(update, self._service.set_threshold(chat, admin, label, value)):
            await _reply(update, f"Threshold of <code>{escape(label)}</code> is now {value:g}.")

    async def action(self, update: Update, context: Context) -> None:
        """/action flag|delete|warn|timeout (admins)."""
        if (admin := await self._require_admin(update)) is None:
            return
        if not context.args:
            await _reply(update, "Usage: <code>/action flag|delete|warn|timeout</code>")
            return
        chat = chat_ref(update.effective_chat.id)  # type: ignore[union-attr]
        if await self._apply(update, self._service.set_action(chat, admin, context.args[0])):
            await _reply(update, f"Action over threshold is now <code>{escape(context.args[0])}</code>.")

    async def stats(self, update: Update, context: Context) -> None:
        """/stats: counts of this chat's moderation log (admins)."""
        if await self._require_admin(update) is None:
            return
        stats = await self._service.stats(chat_ref(update.effective_chat.id))  # type: ignore[union-attr]
        await _reply(update, stats_html(stats))

    async def _require_admin(self, update: Update) -> Actor | None:
        """The admin asking, or None after telling a non-admin (or a private chat) why not."""
        chat, user, message = (update.effective_chat, update.effective_user, update.effective_message)
        assert chat is not None and message is not None
        if chat.type not in GROUP_TYPES:
            await _reply(update, "Admin commands work in groups. Here I only classify: send me any text.")
            return None
        if user is None:
            return None
        is_admin = is_anonymous_admin(message) or await self._admins.is_admin(message.get_bot(), chat.id, user.id)
        if not is_admin:
            await _reply(update, "Only this chat's admins can use this command.")
            return None
        return actor(user, is_admin=True)

    async def _apply(self, update: Update, change: Awaitable[object]) -> bool:
        """Await a settings change; a refused or invalid one is answered with its one-line reason."""
        try:
            await change
        except BotError as error:
            await _reply_plain(update, str(error))
            return False
        return True


async def _reply(update: Update, html: str) -> None:
    """Reply in HTML, split into several messages when it would not fit in one."""
    message = update.effective_message
    assert message is not None
    for chunk in split_html(html):
        await call_api(message.reply_text, chunk, parse_mode=ParseMode.HTML, do_quote=True)


async def _reply_plain(update: Update, text: str) -> None:
    message = update.effective_message
    assert message is not None
    await call_api(message.reply_text, text[:4096], do_quote=True)
