"""Fixtures of the fault-injection suite: a message load whose right outcome is known before the bot sees it."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import pytest

from bot.core.classifier import Classifier
from bot.core.moderation import ModerationService
from bot.core.registry import Registry
from bot.core.types import Actor, ChatRef, Message
from bot.storage import Storage

CANDIDATES = (
    "you are so stupid",
    "you are a stupid idiot",
    "he is an idiot",
    "they will find and kill you",
    "this guy should die, i will kill them",
    "your friend are an idiot",
    "hello there, how was your weekend",
    "had a wonderful weekend at the park",
    "thanks for the help with the code",
    "see you at the meeting tomorrow",
    "good morning everyone, coffee is ready",
    "what a lovely picture of the mountains",
)
MARGIN = 0.1  # texts whose scores sit this close to a threshold are left out: the load needs clear answers


@dataclass(frozen=True)
class Load:
    """Texts the tiny model judges clearly: ``striking`` ones make an event and a strike, ``clean`` ones nothing."""

    striking: tuple[str, ...]
    clean: tuple[str, ...]

    def messages(self, count: int, authors: int, *, start: int = 0) -> list[tuple[int, str, bool]]:
        """``count`` (author number, text, strikes) rows, half striking, authors in turn; numbered from ``start``."""
        texts = itertools.cycle(itertools.chain.from_iterable(zip(self.striking, self.clean, strict=False)))
        rows = []
        for index in range(start, start + count):
            text = next(texts)
            rows.append((index % authors, f"{text} #{index}", text in self.striking))
        return rows


@pytest.fixture(scope="session")
def load(registry: Registry) -> Load:
    """Each candidate judged once by the real service with default settings, on an in-memory database."""

    async def judge() -> Load:
        classifier = Classifier(registry)
        storage = await Storage.open(":memory:")
        try:
            service = ModerationService(classifier, storage, registry)
            striking, clean = [], []
            for number, text in enumerate(CANDIDATES):
                message = Message(ChatRef("telegram", "1"), str(number), Actor(str(number)), f"{text} #0")
                outcome = await service.handle(message)
                scores = outcome.classification.as_dict() if outcome.classification else {}
                near = any(abs(score - 0.5) < MARGIN for score in scores.values())
                if near:
                    continue
                if outcome.decision.is_strike:
                    striking.append(text)
                elif not outcome.decision.flagged:
                    clean.append(text)
            return Load(tuple(striking), tuple(clean))
        finally:
            await classifier.aclose()
            await storage.close()

    judged = asyncio.run(judge())
    assert len(judged.striking) >= 2 and len(judged.clean) >= 2, f"the tiny model separates too little: {judged}"
    return judged
