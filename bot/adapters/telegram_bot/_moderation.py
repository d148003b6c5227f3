"""Group messages -> the moderation service -> actions; admins' review buttons -> feedback and undo."""

from __future__ import annotations

import logging
from html import escape

from telegram import Bot, CallbackQuery, Update
from telegram import Message as TgMessage
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from bot.adapters.telegram_bot._actions import ActionTaker, Target
from bot.adapters.telegram_bot._admins import AdminCache
from bot.adapters.telegram_bot._convert import (
    actor,
    author_of,
    chat_ref,
    is_anonymous_admin,
    message_text,
    to_core_message,
)
from bot.adapters.telegram_bot._intake import current_inbox_id
from bot.adapters.telegram_bot._render import FEEDBACK_PREFIX, mention, review_keyboard
from bot.adapters.telegram_bot._retry import call_api
from bot.core.commands import Commands
from bot.core.commands import Context as CommandContext
from bot.core.errors import BotError
from bot.core.moderation import ModerationService, Outcome
from bot.core.outbox import PendingAction
from bot.core.records import Action, ActionReport
from bot.core.replies import review_buttons

log = logging.getLogger(__name__)
Context = ContextTypes.DEFAULT_TYPE


class Moderation:
    """Handlers for group messages and for the review buttons under the bot's warnings."""

    def __init__(self, service: ModerationService, admins: AdminCache, actions: ActionTaker) -> None:
        self._service = service
        self._commands = Commands(service)
        self._admins = admins
        self._actions = actions

    async def on_group_message(self, update: Update, context: Context) -> None:
        """A new or edited text or caption in a group: judge it and carry out the decision."""
        message = update.effective_message
        if message is None or author_of(message) is None:
            return
        if is_anonymous_admin(message) or message.is_automatic_forward:  # the group's or its linked channel's admins
            author_is_admin = True
        elif message.sender_chat is not None:  # a post sent as some channel: judged as that channel
            author_is_admin = False
        else:
            author_is_admin = await self._admins.is_admin(context.bot, message.chat.id, message.from_user.id)
        core_message = to_core_message(
            message,
            author_is_admin=author_is_admin,
            edited=update.edited_message is not None,
            inbox_id=current_inbox_id(),
        )
        if core_message is None:
            return
        outcome = await self._service.handle(core_message)
        if outcome.notice:  # e.g. the chat's model failed and the default took over: said once, to the chat
            await call_api(context.bot.send_message, chat_id=message.chat.id, text=outcome.notice)
        if not outcome.act or outcome.event_id is None:  # nothing to do, or a redelivery whose action is recorded
            return
        decision = outcome.decision
        result = await self._actions.carry_out(
            context.bot,
            Target.of(message),
            decision.action,
            decision.reason,
            decision.timeout_seconds,
            outcome.event_id,
            outcome.explanation,
        )
        await self._service.record_action_report(outcome.event_id, result)
        await self._post_to_log(context.bot, message, outcome, result)
        log.info("chat %s message %s: %s -> %s", message.chat.id, message.message_id, decision.action, result.detail)

    async def retry(self, bot: Bot, action: PendingAction) -> ActionReport:
        """Carry out a stored decision again (cut short by a crash, or failed in an outage)."""
        result = await self._actions.carry_out(
            bot, Target.of_pending(action), Action(action.action), action.reason, action.timeout_seconds,
            action.event_id,
        )  # fmt: skip
        log.info("chat %s message %s: %s (again) -> %s", action.chat.chat_id, action.message_id, action.action,
                 result.detail)  # fmt: skip
        return result

    async def on_feedback(self, update: Update, context: Context) -> None:
        """An admin of the event's chat pressed "Not toxic" (undo: clear the strike, lift a timeout) or "Confirm".

        The buttons sit under the bot's warning in the group, or under its post in the chat's log channel.
        """
        query = update.callback_query
        assert query is not None
        parsed = _parse_feedback(query.data or "")
        if parsed is None:
            await call_api(query.answer, "Unknown button.")
            return
        event_id, correct = parsed
        try:
            event = await self._service.event(event_id)
            group = int(event.chat.chat_id)
            if not await self._admins.is_admin(context.bot, group, query.from_user.id):
                await call_api(query.answer, "Only this chat's admins can review moderation.", show_alert=True)
                return
            ctx = CommandContext(event.chat, actor(query.from_user, is_admin=True))
            reply, result = await self._commands.review(ctx, event_id, correct)
        except BotError as error:
            await call_api(query.answer, str(error)[:200], show_alert=True)
            return
        notes = list(reply.lines)
        if result.lift_timeout and result.author_id:
            notes.append(await self._actions.lift_restriction(context.bot, group, int(result.author_id)))
        summary = f"Reviewed by {query.from_user.full_name}: {' '.join(notes)}"
        await call_api(query.answer, summary[:200])
        await self._mark_reviewed(query, escape(summary))

    async def _post_to_log(self, bot: Bot, message: TgMessage, outcome: Outcome, report: ActionReport) -> None:
        """The chat's log channel (``/logchannel``) gets one post per event, with the review buttons."""
        settings = await self._service.settings(chat_ref(message.chat.id))
        if not settings.log_channel or outcome.event_id is None:
            return
        author = message.from_user
        who = mention(author.id, author.full_name) if author else "someone"
        lines = [
            f"<b>{escape(str(outcome.decision.action))}</b> in {escape(message.chat.title or str(message.chat.id))}: "
            f"{who}",
            f"<blockquote>{escape(message_text(message)[:300])}</blockquote>",
            f"<i>{escape(outcome.decision.reason)}</i>",
            f"result: {escape(report.detail)} · event #{outcome.event_id}",
        ]
        try:
            await call_api(
                bot.send_message,
                chat_id=settings.log_channel,
                text="\n".join(lines),
                parse_mode=ParseMode.HTML,
                reply_markup=review_keyboard(review_buttons(outcome.event_id)),
            )
        except TelegramError as error:
            log.warning("could not post to the log channel of chat %s: %s", message.chat.id, error)

    async def _mark_reviewed(self, query: CallbackQuery, summary: str) -> None:
        """Append the review to the warning and drop its buttons; a failure here loses nothing stored."""
        message = query.message
        if not isinstance(message, TgMessage):  # too old: Telegram sends an InaccessibleMessage
            return
        try:
            await call_api(
                message.edit_text, f"{message.text_html}\n\n✅ {summary}", parse_mode=ParseMode.HTML, reply_markup=None
            )
        except TelegramError as error:
            log.warning("could not mark the review on the warning: %s", error)


def _parse_feedback(data: str) -> tuple[int, bool] | None:
    """``fb:<event id>:<1 right | 0 wrong>`` -> (event id, correct), or None for anything else."""
    prefix, _, rest = data.partition(":")
    event_text, _, verdict = rest.partition(":")
    if prefix != FEEDBACK_PREFIX or not event_text.isdigit() or verdict not in ("0", "1"):
        return None
    return int(event_text), verdict == "1"
