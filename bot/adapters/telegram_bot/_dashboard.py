"""Telegram's side of the web dashboard: ``/dashboard`` answered in a private message, admin checks and lifting a
restriction when the dashboard asks."""

from __future__ import annotations

import logging

from telegram import Bot, LinkPreviewOptions, Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import ContextTypes

from bot.adapters.telegram_bot._actions import ActionTaker
from bot.adapters.telegram_bot._admins import AdminCache
from bot.adapters.telegram_bot._convert import GROUP_TYPES, actor, chat_ref, is_anonymous_admin
from bot.adapters.telegram_bot._retry import call_api
from bot.core.commands import Commands, Context, answer
from bot.core.dashboard_access import LinkMaker

log = logging.getLogger(__name__)

SENT = "I sent you the dashboard link in a private message."
START_FIRST = "I cannot message you privately yet: open a private chat with me, press Start, then run /dashboard here."
IN_A_GROUP = "Run /dashboard in the group you moderate: the link opens that group's dashboard."
ANONYMOUS = "Anonymous admins cannot get a private link: run /dashboard as yourself."


class TelegramPlatform:
    """The calls the dashboard makes on Telegram (``bot.core.platforms.PlatformOps``)."""

    def __init__(self, bot: Bot, admins: AdminCache, actions: ActionTaker) -> None:
        self._bot = bot
        self._admins = admins
        self._actions = actions

    async def is_admin(self, chat_id: str, user_id: str) -> bool:
        try:
            chat, user = int(chat_id), int(user_id)
        except ValueError:
            return False
        return await self._admins.is_admin(self._bot, chat, user)

    async def lift_timeout(self, chat_id: str, user_id: str) -> str:
        return await self._actions.lift_restriction(self._bot, int(chat_id), int(user_id))


class DashboardCommand:
    """``/dashboard`` in a group: checked against getChatMember, answered with a private message."""

    def __init__(self, commands: Commands, links: LinkMaker | None, admins: AdminCache) -> None:
        self._commands = commands
        self._links = links
        self._admins = admins

    async def __call__(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat, user, message = update.effective_chat, update.effective_user, update.effective_message
        if chat is None or message is None:
            return
        if chat.type not in GROUP_TYPES:
            await call_api(message.reply_text, IN_A_GROUP)
            return
        if is_anonymous_admin(message) or user is None:
            await call_api(message.reply_text, ANONYMOUS)
            return
        bot = message.get_bot()
        admin = await self._admins.is_admin(bot, chat.id, user.id)
        if not admin:
            await call_api(message.reply_text, "Only this chat's admins can open the dashboard.", do_quote=True)
            return
        ctx = Context(chat_ref(chat.id), actor(user, is_admin=True))
        reply = await answer(self._commands.dashboard(ctx, self._links))
        text = "\n".join(reply.lines)
        try:
            no_preview = LinkPreviewOptions(is_disabled=True)
            await call_api(bot.send_message, chat_id=user.id, text=text, link_preview_options=no_preview)
        except Forbidden:  # the admin never opened a private chat with the bot
            await call_api(message.reply_text, START_FIRST, do_quote=True)
            return
        except TelegramError as error:
            log.warning("telegram: cannot send the dashboard link privately: %s", error)
            await call_api(message.reply_text, "I could not send you the link; try again later.", do_quote=True)
            return
        await call_api(message.reply_text, SENT, do_quote=True)
