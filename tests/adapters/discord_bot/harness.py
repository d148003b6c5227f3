"""Shared set-up of the Discord end-to-end tests: the real service on tiny models, the real client, the fake server.

Tiny models score whatever they score, so tests make a decision deterministic through the service's own settings
(thresholds), using the scores the same model gives the same text, never faked scores.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
from discord.gateway import DiscordWebSocket

from bot.adapters.discord_bot import ModerationBot, configure_endpoints, run_until
from bot.core.classifier import Classifier
from bot.core.labels import TOXICITY_LABELS
from bot.core.moderation import ModerationService
from bot.core.types import Actor, ChatRef
from bot.storage import Storage
from tests.fakes.discord_server import FakeDiscord

TOKEN = "fake-discord-token"
SERVICE_ADMIN = Actor("1", is_admin=True)  # the test itself, changing settings through the service
CLEAN_TEXT = "had a wonderful weekend at the park"
TOXIC_TEXT = "you are a stupid idiot"


def chat(fake: FakeDiscord) -> ChatRef:
    return ChatRef("discord", fake.guild.id)


@contextlib.asynccontextmanager
async def moderation_service(classifier: Classifier, database: Path) -> AsyncIterator[ModerationService]:
    """The core of one bot process on ``database`` (tests share one classifier: loading a model costs seconds)."""
    storage = await Storage.open(database)
    try:
        yield ModerationService(classifier, storage, classifier.registry)
    finally:
        await storage.close()


@contextlib.asynccontextmanager
async def running_bot(fake: FakeDiscord, service: ModerationService, **options: Any) -> AsyncIterator[ModerationBot]:
    """The real client connected to the fake until the block ends; fails fast if it dies while starting."""
    saved = discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    configure_endpoints(fake.api_base, fake.gateway_url)
    options.setdefault("guild_ready_timeout", 0.05)  # READY waits this long for more guilds after the last one
    bot = ModerationBot(service, **options)
    stop = asyncio.Event()
    runner = asyncio.create_task(run_until(bot, TOKEN, stop))
    ready = asyncio.create_task(bot.wait_until_ready())
    try:
        await asyncio.wait({runner, ready}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if runner.done():
            runner.result()  # raises why it stopped
            raise AssertionError("the bot stopped before it was ready")
        assert ready.done(), "the bot did not reach on_ready within 15 s"
        yield bot
    finally:
        ready.cancel()
        stop.set()
        await asyncio.wait_for(runner, 15)
        discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = saved


@dataclass(frozen=True)
class Split:
    """A threshold on ``label`` that the toxic text reaches and the clean text does not."""

    label: str
    threshold: float
    clean_score: float
    toxic_score: float


async def split_threshold(
    service: ModerationService, room: ChatRef, clean: str = CLEAN_TEXT, toxic: str = TOXIC_TEXT, label: str = "insult"
) -> Split:
    """Make ``toxic`` act and ``clean`` not in ``room``: ``label`` between their scores, other labels out of reach."""
    clean_score = (await service.classify(clean, chat=room)).score(label)
    toxic_score = (await service.classify(toxic, chat=room)).score(label)
    assert toxic_score - clean_score > 1e-4, f"{label}: the tiny model scores {toxic!r} no higher than {clean!r}"
    threshold = (clean_score + toxic_score) / 2
    for other in TOXICITY_LABELS:
        await service.set_threshold(room, SERVICE_ADMIN, other, threshold if other == label else 1.0)
    return Split(label, threshold, clean_score, toxic_score)


async def act_on_everything(service: ModerationService, room: ChatRef, *texts: str, label: str = "insult") -> None:
    """A threshold on ``label`` below the score of every one of ``texts`` (checked, not assumed)."""
    floor = min([(await service.classify(text, chat=room)).score(label) for text in texts])
    assert floor > 0, "a threshold must stay above 0"
    await service.set_threshold(room, SERVICE_ADMIN, label, floor / 2)


def option(name: str, value: Any, kind: int = 3, *, focused: bool = False) -> dict[str, Any]:
    """A slash command option: 3 string, 5 boolean, 7 channel, 9 mentionable, 10 number."""
    return {"type": kind, "name": name, "value": value, **({"focused": True} if focused else {})}


def subcommand(name: str, *options: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "name": name, "options": list(options)}


def embed_text(reply: dict[str, Any]) -> str:
    """Everything a reply's embeds say, as one string."""
    parts = []
    for embed in reply.get("embeds") or []:
        parts += [embed.get("title", ""), embed.get("description", "")]
        parts += [f"{f['name']}: {f['value']}" for f in embed.get("fields", [])]
        parts.append((embed.get("footer") or {}).get("text", ""))
    return "\n".join(parts)
