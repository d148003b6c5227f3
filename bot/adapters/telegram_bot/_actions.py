"""A moderation decision -> Telegram calls (react, delete, warn, restrict), failures reported as text, never raised."""

from __future__ import annotations

import datetime as dtm
import logging
from dataclasses import dataclass
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
from bot.adapters.telegram_bot._convert import author_of
from bot.adapters.telegram_bot._render import mention, review_keyboard
from bot.adapters.telegram_bot._retry import call_api, describe, is_transient
from bot.core.durations import format_duration
from bot.core.explain import Explanation
from bot.core.outbox import PendingAction
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


@dataclass(frozen=True, slots=True)
class Target:
    """Whom and what an action is for: rebuilt from a stored event when the action is carried out later."""

    chat_id: int
    message_id: int
    author_id: int  # a user, or (negative) the channel a post was sent as
    author_name: str

    @property
    def is_chat(self) -> bool:
        return self.author_id < 0  # Telegram's user ids are positive, chat ids negative

    @classmethod
    def of(cls, message: TgMessage) -> Target:
        author_id, name = author_of(message) or (0, "someone")
        return cls(message.chat.id, message.message_id, author_id, name)

    @classmethod
    def of_pending(cls, action: PendingAction) -> Target:
        return cls(int(action.chat.chat_id), int(action.message_id), int(action.author_id), action.author_name)


class ActionTaker:
    """Carries out decisions in a chat and says what happened, in the words the moderation log keeps."""

    def __init__(self, admins: AdminCache) -> None:
        self._admins = admins
        self._told_missing_rights: set[int] = set()  # chats already told that the bot lacks rights

    async def carry_out(
        self,
        bot: Bot,
        target: Target,
        action: Action,
        reason: str,
        timeout_seconds: int,
        event_id: int | None,
        explanation: Explanation | None = None,
    ) -> ActionReport:
        """Do what the decision says to the target message and its author; returns the result to store. The warning
        (the chat's log on Telegram) shows ``explanation``, the words behind the score.

        Full success is the action's word ("deleted" ...); otherwise the failures, joined by "; ".
        """
        if action is Action.NONE:
            return ActionReport(True, "done")
        if action is Action.FLAG:
            return await self._react(bot, target) or ActionReport(True, "flagged")
        failures: list[ActionReport | None] = []
        still_there = True
        if action in (Action.DELETE, Action.TIMEOUT):
            failures.append(await self._delete(bot, target))
            still_there = failures[-1] is not None
        if action is Action.TIMEOUT:
            failures.append(await self._restrict(bot, target, timeout_seconds))
        failures.append(
            await self._warn(bot, target, action, reason, timeout_seconds, event_id, explanation, replied=still_there)
        )
        found = [failure for failure in failures if failure]
        if found:
            return ActionReport(False, "; ".join(f.detail for f in found), transient=any(f.transient for f in found))
        return ActionReport(
            True, {Action.DELETE: "deleted", Action.WARN: "warned", Action.TIMEOUT: "timed out"}.get(action, "done")
        )

    async def lift_restriction(self, bot: Bot, chat_id: int, user_id: int) -> str:
        """Give a muted member (or a banned channel) their rights back (an admin said the message was not toxic)."""
        try:
            if user_id < 0:
                await call_api(bot.unban_chat_sender_chat, chat_id=chat_id, sender_chat_id=user_id)
            else:
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

    async def _react(self, bot: Bot, target: Target) -> ActionReport | None:
        try:
            await call_api(
                bot.set_message_reaction,
                chat_id=target.chat_id,
                message_id=target.message_id,
                reaction=[ReactionTypeEmoji(FLAG_REACTION)],
            )
        except TelegramError as error:
            return ActionReport(False, f"flag failed: {describe(error)}", transient=is_transient(error))
        return None

    async def _delete(self, bot: Bot, target: Target) -> ActionReport | None:
        try:
            await call_api(bot.delete_message, chat_id=target.chat_id, message_id=target.message_id)
        except (BadRequest, Forbidden) as error:
            if "not found" in str(error).lower():  # gone already (its author, or an earlier attempt): as wanted
                return None
            await self._check_rights(bot, target.chat_id)
            return ActionReport(False, f"delete failed: {error}")
        except TelegramError as error:
            return ActionReport(False, f"delete failed: {describe(error)}", transient=is_transient(error))
        self._told_missing_rights.discard(target.chat_id)
        return None

    async def _restrict(self, bot: Bot, target: Target, seconds: int) -> ActionReport | None:
        if not target.author_id:
            return ActionReport(False, "not restricted: no author")
        until = dtm.datetime.now(dtm.UTC) + dtm.timedelta(seconds=max(seconds, MIN_RESTRICTION))
        try:
            if target.is_chat:  # a channel cannot be muted: its posts are banned from the chat instead
                await call_api(bot.ban_chat_sender_chat, chat_id=target.chat_id, sender_chat_id=target.author_id)
            else:
                await call_api(
                    bot.restrict_chat_member,
                    chat_id=target.chat_id,
                    user_id=target.author_id,
                    permissions=ChatPermissions.no_permissions(),
                    until_date=until,
                )
        except (BadRequest, Forbidden) as error:
            await self._check_rights(bot, target.chat_id)
            return ActionReport(False, f"restrict failed: {error}")
        except TelegramError as error:
            return ActionReport(False, f"restrict failed: {describe(error)}", transient=is_transient(error))
        return None

    async def _warn(
        self,
        bot: Bot,
        target: Target,
        action: Action,
        reason: str,
        timeout_seconds: int,
        event_id: int | None,
        explanation: Explanation | None,
        *,
        replied: bool,
    ) -> ActionReport | None:
        who = escape(target.author_name) if target.is_chat else mention(target.author_id, target.author_name)
        if action is Action.TIMEOUT:
            head = (
                f"⛔ {who} can no longer post here"
                if target.is_chat
                else f"⏳ {who} is muted for {format_duration(max(timeout_seconds, MIN_RESTRICTION))}"
            )
        elif not replied:
            head = f"🗑 Removed a message from {who}"
        else:
            head = f"⚠️ {who}, please keep it civil"
        text = f"{head}.\n<i>{escape(reason)}</i>"
        reply = ReplyParameters(target.message_id, allow_sending_without_reply=True) if replied else None
        if explanation is not None:
            text += f"\n{escape(explanation_line(explanation))}"
        try:
            await call_api(
                bot.send_message,
                chat_id=target.chat_id,
                text=text,
                parse_mode=ParseMode.HTML,
                reply_parameters=reply,
                reply_markup=review_keyboard(review_buttons(event_id)) if event_id is not None else None,
            )
        except TelegramError as error:
            return ActionReport(False, f"warning failed: {describe(error)}", transient=is_transient(error))
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
