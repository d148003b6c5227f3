"""A moderation decision -> Telegram calls (react, delete, warn, restrict), failures reported as text, never raised."""

from __future__ import annotations

import datetime as dtm
import logging
from html import escape

from telegram import (
    Bot,
    ChatPermissions,
    ReactionTypeEmoji,
    ReplyParameters,
)
from telegram import Message as TgMessage
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from bot.adapters.telegram_bot._admins import AdminCache
from bot.adapters.telegram_bot._render import mention, review_keyboard
from bot.adapters.telegram_bot._retry import call_api
from bot.core.durations import format_duration
from bot.core.explain import Explanation
from bot.core.policy import Decision
from bot.core.records import Action, ActionReport
from bot.core.replies import review_buttons
from bot.core.report import explanation_line

log = logging.getLogger(__name__)

FLAG_REACTION = "👀"
MIN_RESTRICTION = 31  # Telegram treats restrictions shorter than 30 s as permanent
NEED_RIGHTS = (
    "I need to be an admin with the <b>Delete messages</b> and <b>Ban users</b> rights to moderate this chat. "
    "Until then I only classify."
)


class ActionTaker:
    """Carries out decisions in a chat and says what happened, in the words the moderation log keeps."""

    def __init__(self, admins: AdminCache) -> None:
        self._admins = admins
        self._told_missing_rights: set[int] = set()  # chats already told that the bot lacks rights

    async def carry_out(
        self,
        bot: Bot,
        message: TgMessage,
        decision: Decision,
        event_id: int | None,
        explanation: Explanation | None = None,
    ) -> ActionReport:
        """Do what ``decision`` says to ``message``; returns the report to store with the event. The warning (the
        chat's log on Telegram) shows ``explanation``, the words behind the score.

        Full success is the action's word ("deleted" ...); otherwise the failures, joined by "; ".
        """
        action = decision.action
        if action is Action.NONE:
            return ActionReport(True, "done")
        if action is Action.FLAG:
            failure = await self._react(bot, message)
            return ActionReport(failure is None, failure or "flagged")
        failures: list[str | None] = []
        still_there = True
        if action in (Action.DELETE, Action.TIMEOUT):
            failures.append(await self._delete(bot, message))
            still_there = failures[-1] is not None
        if action is Action.TIMEOUT:
            failures.append(await self._restrict(bot, message, decision.timeout_seconds))
        failures.append(await self._warn(bot, message, decision, event_id, explanation, replied=still_there))
        if any(failures):
            return ActionReport(False, "; ".join(failure for failure in failures if failure))
        done = {Action.DELETE: "deleted", Action.WARN: "warned", Action.TIMEOUT: "timed out"}.get(action, "done")
        return ActionReport(True, done)

    async def lift_restriction(self, bot: Bot, chat_id: int, user_id: int) -> str:
        """Give a muted member their rights back (after an admin said the message was not toxic)."""
        try:
            await call_api(
                bot.restrict_chat_member,
                chat_id=chat_id,
                user_id=user_id,
                permissions=ChatPermissions.all_permissions(),
            )
        except TelegramError as error:
            log.warning("could not lift the restriction in chat %s: %s", chat_id, error)
            return f"restriction not lifted: {error}"
        return "restriction lifted"

    async def _react(self, bot: Bot, message: TgMessage) -> str | None:
        try:
            await call_api(
                bot.set_message_reaction,
                chat_id=message.chat.id,
                message_id=message.message_id,
                reaction=[ReactionTypeEmoji(FLAG_REACTION)],
            )
        except TelegramError as error:
            return f"flag failed: {error}"
        return None

    async def _delete(self, bot: Bot, message: TgMessage) -> str | None:
        try:
            await call_api(bot.delete_message, chat_id=message.chat.id, message_id=message.message_id)
        except (BadRequest, Forbidden) as error:
            await self._check_rights(bot, message.chat.id)
            return f"delete failed: {error}"
        except TelegramError as error:
            return f"delete failed: {error}"
        self._told_missing_rights.discard(message.chat.id)
        return None

    async def _restrict(self, bot: Bot, message: TgMessage, seconds: int) -> str | None:
        if message.from_user is None:
            return "not restricted: no author"
        until = dtm.datetime.now(dtm.UTC) + dtm.timedelta(seconds=max(seconds, MIN_RESTRICTION))
        try:
            await call_api(
                bot.restrict_chat_member,
                chat_id=message.chat.id,
                user_id=message.from_user.id,
                permissions=ChatPermissions.no_permissions(),
                until_date=until,
            )
        except (BadRequest, Forbidden) as error:
            await self._check_rights(bot, message.chat.id)
            return f"restrict failed: {error}"
        except TelegramError as error:
            return f"restrict failed: {error}"
        return None

    async def _warn(
        self,
        bot: Bot,
        message: TgMessage,
        decision: Decision,
        event_id: int | None,
        explanation: Explanation | None,
        *,
        replied: bool,
    ) -> str | None:
        author = message.from_user
        who = mention(author.id, author.full_name) if author else "someone"
        if decision.action is Action.TIMEOUT:
            head = f"⏳ {who} is muted for {format_duration(max(decision.timeout_seconds, MIN_RESTRICTION))}"
        elif not replied:
            head = f"🗑 Removed a message from {who}"
        else:
            head = f"⚠️ {who}, please keep it civil"
        text = f"{head}.\n<i>{escape(decision.reason)}</i>"
        if explanation is not None:
            text += f"\n{escape(explanation_line(explanation))}"
        reply = ReplyParameters(message.message_id, allow_sending_without_reply=True) if replied else None
        try:
            await call_api(
                bot.send_message,
                chat_id=message.chat.id,
                text=text,
                parse_mode=ParseMode.HTML,
                reply_parameters=reply,
                reply_markup=review_keyboard(review_buttons(event_id)) if event_id is not None else None,
            )
        except TelegramError as error:
            return f"warning failed: {error}"
        return None

    async def _check_rights(self, bot: Bot, chat_id: int) -> None:
        """After a refused action: if the bot lacks admin rights, tell the chat, once."""
        self._admins.forget_chat(chat_id)
        if chat_id in self._told_missing_rights or await self._admins.bot_can_moderate(bot, chat_id):
            return
        self._told_missing_rights.add(chat_id)
        try:
            await call_api(bot.send_message, chat_id=chat_id, text=NEED_RIGHTS, parse_mode=ParseMode.HTML)
        except TelegramError as error:
            log.warning("could not tell chat %s about missing rights: %s", chat_id, error)
