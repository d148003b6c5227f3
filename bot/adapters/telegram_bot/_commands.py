"""Commands: the shared command surface (``bot.core.command_text``), parsed from Telegram messages, rendered as HTML."""

from __future__ import annotations

import logging

from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.adapters.telegram_bot._admins import AdminCache
from bot.adapters.telegram_bot._convert import GROUP_TYPES, actor, chat_ref, is_anonymous_admin, message_text
from bot.adapters.telegram_bot._render import reply_html, split_html
from bot.adapters.telegram_bot._retry import call_api
from bot.core.command_text import COMMANDS, help_reply, run_text
from bot.core.commands import Commands as CoreCommands
from bot.core.commands import Context, answer
from bot.core.moderation import ModerationService
from bot.core.replies import Reply

log = logging.getLogger(__name__)

NOT_HERE = frozenset()  # every typed command exists on Telegram (exempt takes user ids; there are no roles)
PUBLIC_COMMANDS = (
    BotCommand("classify", "Score a text (or reply to a message) on each label; /classify explain TEXT says why"),
)
DASHBOARD = ("/dashboard", "a private link to this chat's web dashboard (admins)")
ADMIN_COMMANDS = (
    *PUBLIC_COMMANDS,
    *(BotCommand(c.name, c.summary[:256]) for c in COMMANDS.values() if c.name != "classify"),
    BotCommand("dashboard", "A private link to this chat's web dashboard"),
    BotCommand("help", "Every command"),
)
INTRO = "I score messages on six toxicity labels and moderate groups as their admins configure."
Context_ = ContextTypes.DEFAULT_TYPE


class Commands:
    """One Telegram handler for every typed command, plus /help and private-chat classification."""

    def __init__(self, service: ModerationService, admins: AdminCache) -> None:
        self._service = service
        self._commands = CoreCommands(service)
        self._admins = admins

    async def help(self, update: Update, context: Context_) -> None:
        """/start and /help."""
        commands = help_reply(exclude=NOT_HERE, extra=(DASHBOARD,))
        await _reply(update, reply_html(Reply(lines=(INTRO,))) + "\n\n" + reply_html(commands))

    async def command(self, update: Update, context: Context_) -> None:
        """Any command of the shared surface: admin check on Telegram's side, then the core, then HTML."""
        message, chat, user = update.effective_message, update.effective_chat, update.effective_user
        assert message is not None and chat is not None
        name = (message_text(message).split() or ["/"])[0][1:].partition("@")[0].lower()
        rest = " ".join(context.args or [])
        spec = COMMANDS.get(name)
        if spec is None:
            return
        if name == "classify" and rest.strip().lower() in ("", "explain") and message.reply_to_message is not None:
            rest = f"{rest} {message_text(message.reply_to_message)}"  # /classify [explain] as a reply
        if name == "exempt" and message.reply_to_message is not None and message.reply_to_message.from_user:
            rest = f"{message.reply_to_message.from_user.id} {rest}".strip()  # /exempt as a reply: its author
        is_admin = False
        if spec.admin or name in ("model", "review"):
            if chat.type not in GROUP_TYPES:
                await _reply(update, "Admin commands work in groups. Here I only classify: send me any text.")
                return
            is_admin = is_anonymous_admin(message) or (
                user is not None and await self._admins.is_admin(message.get_bot(), chat.id, user.id)
            )
            if spec.admin and not is_admin:
                await _reply(update, "Only this chat's admins can use this command.")
                return
        who = actor(user, is_admin=is_admin) if user is not None else None
        if who is None:
            return
        reply = await run_text(self._commands, Context(chat_ref(chat.id), who), name, rest)
        if reply is not None:
            await _reply(update, reply_html(reply))

    async def private_text(self, update: Update, context: Context_) -> None:
        """Any text sent to the bot in a private chat: the table."""
        message, chat, user = update.effective_message, update.effective_chat, update.effective_user
        assert message is not None and chat is not None and user is not None
        text = message_text(message)
        reply = await answer(self._commands.classify(Context(chat_ref(chat.id), actor(user, is_admin=False)), text))
        await _reply(update, reply_html(reply))


async def _reply(update: Update, html: str) -> None:
    """Reply in HTML, split into several messages when it would not fit in one."""
    message = update.effective_message
    assert message is not None
    for chunk in split_html(html):
        await call_api(message.reply_text, chunk, parse_mode=ParseMode.HTML, do_quote=True)
