"""Carry out a moderation decision on Discord and describe what Discord answered.

Every platform failure becomes an ``ActionResult`` (its ``report`` is recorded in the moderation log) instead of an
exception: a missing permission, a message someone already deleted, a member who left or a rate limit must never stop
the bot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import discord

from bot.core.outbox import PendingAction
from bot.core.policy import Decision
from bot.core.records import Action, ActionReport

_log = logging.getLogger(__name__)

FLAG_EMOJI = "\N{WARNING SIGN}\N{VARIATION SELECTOR-16}"
MAX_TIMEOUT = timedelta(days=28)  # Discord refuses longer timeouts
_UNKNOWN_GUILD, _UNKNOWN_MEMBER, _UNKNOWN_MESSAGE = 10004, 10007, 10008
STEP_BUDGET = 5.0  # seconds one step may take before it counts as a transient failure (carried out again later)
TRANSIENT = frozenset({"rate limited", "server error", "network error"})  # problems that pass: tried again later
_DONE = {Action.FLAG: "flagged", Action.WARN: "warned", Action.DELETE: "deleted", Action.TIMEOUT: "timed out"}


@dataclass(frozen=True)
class ActionResult:
    """What happened, as recorded in the moderation log; ``problem`` names a failure worth telling the mod-log."""

    text: str
    problem: str | None = None

    @property
    def report(self) -> ActionReport:
        return ActionReport(ok=self.problem is None, detail=self.text, transient=self.problem in TRANSIENT)


@dataclass(frozen=True)
class _Step:
    name: str  # "deleted", "warned" ...
    permission: str  # the permission Discord checks for this step
    run: Callable[[], Awaitable[object]]


async def carry_out(message: discord.Message, decision: Decision) -> ActionResult:
    """Do what ``decision`` says to ``message`` (and its author); every step runs even if an earlier one failed.

    Full success is the action's word ("deleted", "timed out" ...); otherwise every step's result, joined by "; ".
    """
    steps = _steps(message, decision)
    results = [await _attempt(step) for step in steps]
    problem = next((result.problem for result in results if result.problem), None)
    if problem is None:
        return ActionResult(_DONE.get(Action(decision.action), "done"))
    return ActionResult("; ".join(result.text for result in results), problem)


def _steps(message: discord.Message, decision: Decision) -> list[_Step]:
    action = Action(decision.action)
    author = message.author
    if action is Action.FLAG:
        return [_Step("flagged", "Add Reactions", lambda: message.add_reaction(FLAG_EMOJI))]
    if action is Action.WARN:
        return [_Step("warned", "Send Messages", lambda: _reply(message, _warning(author, decision)))]
    if action is Action.DELETE:
        return [_Step("deleted", "Manage Messages", lambda: message.delete())]
    if action is Action.TIMEOUT:
        until = min(timedelta(seconds=max(decision.timeout_seconds, 1)), MAX_TIMEOUT)
        reason = f"modbot: {decision.reason}"[:512]
        return [
            _Step("deleted", "Manage Messages", lambda: message.delete()),
            _Step("timed out", "Moderate Members", lambda: _timeout(message, until, reason)),
        ]
    return []


async def _attempt(step: _Step) -> ActionResult:
    try:
        async with asyncio.timeout(STEP_BUDGET):  # discord.py retries a 5xx for ~25 s; we retry later instead
            await step.run()
    except discord.Forbidden:
        return ActionResult(f"forbidden: missing {step.permission}", f"missing {step.permission}")
    except discord.NotFound as error:
        if error.code == _UNKNOWN_MESSAGE:
            return ActionResult("not done: message already deleted", "message already deleted")
        if error.code == _UNKNOWN_MEMBER:
            return ActionResult("not done: the member left", "member left")
        if error.code == _UNKNOWN_GUILD:
            return ActionResult("not done: the bot is no longer in this server", "server unavailable")
        return ActionResult(f"not done: {error.text or 'not found'}", "not found")
    except discord.RateLimited as error:
        return ActionResult(f"not done: rate limited for {error.retry_after:.0f}s", "rate limited")
    except discord.HTTPException as error:
        if error.status == 429:
            return ActionResult("not done: rate limited", "rate limited")
        problem = "server error" if error.status >= 500 else f"HTTP {error.status}"
        return ActionResult(f"failed: HTTP {error.status} {error.text}".strip(), problem)
    except (TimeoutError, aiohttp.ClientError) as error:
        _log.warning("network error while %s: %r", step.name, error)
        return ActionResult("failed: network error", "network error")
    return ActionResult(step.name)


async def _timeout(message: discord.Message, until: timedelta, reason: str) -> None:
    author = message.author
    if not isinstance(author, discord.Member) and message.guild is not None:
        author = await message.guild.fetch_member(author.id)  # NotFound when they left
    await author.timeout(until, reason=reason)  # type: ignore[union-attr]


def _reply(message: discord.Message, text: str) -> Awaitable[discord.Message]:
    # still posts (without the reply link) when the message was deleted meanwhile
    return message.channel.send(text, reference=message.to_reference(fail_if_not_exists=False))


def _warning(author: discord.abc.User, decision: Decision) -> str:
    labels = ", ".join(label.replace("_", " ") for label in decision.triggered) or "toxicity"
    return f"{FLAG_EMOJI} {author.mention}, please keep it civil (flagged: {labels})."


class StoredMessage:
    """A logged message rebuilt from its event, to carry out its action again: what ``carry_out`` needs of it."""

    def __init__(self, message: discord.PartialMessage, author: discord.abc.Snowflake | discord.Member) -> None:
        self._message = message
        self.id = message.id
        self.channel = message.channel
        self.guild = message.guild
        self.author = author

    def delete(self) -> Awaitable[None]:
        return self._message.delete()

    def add_reaction(self, emoji: str) -> Awaitable[None]:
        return self._message.add_reaction(emoji)

    def to_reference(self, **options: bool) -> discord.MessageReference:
        return self._message.to_reference(**options)


async def stored_message(client: discord.Client, action: PendingAction) -> StoredMessage | None:
    """The message and author of a logged event (None when its channel is unknown or gone)."""
    if not action.place:
        return None
    try:
        channel = client.get_channel(int(action.place)) or await client.fetch_channel(int(action.place))
    except (discord.NotFound, discord.Forbidden):
        return None
    if not isinstance(channel, discord.TextChannel | discord.Thread):
        return None
    member = channel.guild.get_member(int(action.author_id))
    author = member or _Author(int(action.author_id))
    return StoredMessage(channel.get_partial_message(int(action.message_id)), author)


class _Author(discord.Object):
    """An author who is not in the member cache: enough to mention and to fetch for a timeout."""

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"
