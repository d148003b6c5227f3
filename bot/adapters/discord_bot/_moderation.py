"""Automatic moderation: a new or edited message -> the service's decision -> Discord actions -> log and mod-log."""

from __future__ import annotations

import logging
from typing import Protocol

import discord

from bot.adapters.discord_bot._actions import carry_out
from bot.adapters.discord_bot._convert import to_message
from bot.adapters.discord_bot._modlog import ModLog
from bot.core.errors import BotError
from bot.core.moderation import Outcome
from bot.core.records import ActionReport
from bot.core.types import Message

_log = logging.getLogger(__name__)


class Handler(Protocol):
    async def handle(self, message: Message) -> Outcome: ...
    async def record_action_report(self, event_id: int, report: ActionReport) -> None: ...


class Moderator:
    """Judges messages handed out by the inbox; a failure is told to the mod-log and the message is tried again."""

    def __init__(self, service: Handler, modlog: ModLog) -> None:
        self._service = service
        self._modlog = modlog

    def wants(self, message: discord.Message) -> bool:
        """A guild message from a human with text: the messages that are moderated (and so recorded)."""
        return to_message(message) is not None

    async def moderate(self, message: discord.Message, edited: bool, inbox_id: int | None = None) -> None:
        """Judge a message read from the inbox and carry out the decision."""
        core = to_message(message, edited=edited, inbox_id=inbox_id)
        if core is None or message.guild is None:
            return
        try:
            outcome = await self._service.handle(core)
        except BotError as error:  # database busy, ...: told once; the message stays in the inbox for another attempt
            await self._modlog.tell_once(message.guild, type(error).__name__, f"Cannot moderate messages: {error}")
            raise
        if outcome.notice:  # e.g. the server's model failed and the default took over: said once
            await self._modlog.tell_once(message.guild, f"notice: {outcome.notice}", outcome.notice)
        if not outcome.act or outcome.event_id is None:  # nothing to do, or a redelivery whose action is recorded
            return
        result = await carry_out(message, outcome.decision)
        _log.info("event %s: %s -> %s", outcome.event_id, outcome.decision.action, result.text)
        await self._service.record_action_report(outcome.event_id, result.report)
        if result.problem:
            where = getattr(message.channel, "mention", "a channel")
            hint = " Check my role's permissions in that channel." if result.problem.startswith("missing") else ""
            text = f"I could not {outcome.decision.action} a message in {where}: {result.text}.{hint}"
            await self._modlog.tell_once(message.guild, result.problem, text)
        await self._modlog.post_event(message, outcome, result)
