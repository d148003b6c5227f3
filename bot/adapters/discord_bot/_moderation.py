"""Automatic moderation: a new or edited message -> the service's decision -> Discord actions -> log and mod-log."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import discord

from bot.adapters.discord_bot._actions import carry_out
from bot.adapters.discord_bot._convert import to_message
from bot.adapters.discord_bot._modlog import ModLog
from bot.core.errors import BotError
from bot.core.moderation import Outcome
from bot.core.records import Action, ActionReport
from bot.core.types import Message

_log = logging.getLogger(__name__)


class Handler(Protocol):
    async def handle(self, message: Message) -> Outcome: ...
    async def record_action_report(self, event_id: int, report: ActionReport) -> None: ...


class Moderator:
    """Runs once per message event; a failure is logged and told to the mod-log, never raised to the gateway."""

    def __init__(self, service: Handler, modlog: ModLog) -> None:
        self._service = service
        self._modlog = modlog
        self._in_flight: set[asyncio.Task[object]] = set()

    async def drain(self, seconds: float) -> None:
        """Let messages being handled finish (their actions and log entries), for at most ``seconds``."""
        if self._in_flight:
            await asyncio.wait(set(self._in_flight), timeout=seconds)

    async def on_message(self, message: discord.Message, *, edited: bool = False) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            await self._moderate(message, edited)
        finally:
            self._in_flight.discard(task)  # type: ignore[arg-type]

    async def _moderate(self, message: discord.Message, edited: bool) -> None:
        core = to_message(message, edited=edited)
        if core is None or message.guild is None:
            return
        try:
            outcome = await self._service.handle(core)
        except BotError as error:  # model unavailable, database busy ...: this message goes unmoderated
            await self._modlog.tell_once(message.guild, type(error).__name__, f"Cannot moderate messages: {error}")
            return
        if outcome.event_id is None or outcome.decision.action == Action.NONE:
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

    async def on_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """Edits are moderated like new messages, unless only embeds changed (a link preview is not an edit)."""
        message = payload.message
        before = payload.cached_message
        if message.edited_at is None or (before is not None and before.content == message.content):
            return
        await self.on_message(message, edited=True)
