"""The micro-batcher: passes bounded by a token budget, short texts answered before the long ones of a batch."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.batcher import estimate_tokens
from bot.core.classifier import Classifier
from tests.core.test_classifier import CountingLoader

pytestmark = pytest.mark.asyncio


async def test_a_batch_holds_at_most_the_token_budget(registry, tf_backends) -> None:
    loader = CountingLoader(tf_backends)
    classifier = Classifier(registry, loader=loader, max_batch=64, max_batch_tokens=60, max_wait_ms=20, flood_size=0)
    texts = [f"message {index} about a long and lovely weekend at the park" for index in range(24)]  # ~15 tokens
    try:
        await classifier.load()
        await asyncio.gather(*(classifier.classify([text]) for text in texts))
    finally:
        await classifier.aclose()

    batches = loader.backends["tiny-toxic"].batches
    assert sum(len(batch) for batch in batches) == 24
    for batch in batches:  # the budget closes a batch once reached: the last text may cross it
        assert sum(estimate_tokens(text, 64) for text in batch[:-1]) < 60
    assert max(len(batch) for batch in batches) <= 5


async def test_short_texts_are_answered_before_the_long_text_of_their_batch(registry, tf_backends) -> None:
    loader = CountingLoader(tf_backends)
    classifier = Classifier(registry, loader=loader, max_wait_ms=20, flood_size=0)
    long_text = "this message goes on and on about the weekend at the park " * 6
    answered: list[str] = []

    async def classify(text: str) -> None:
        await classifier.classify([text])
        answered.append(text)

    try:
        await classifier.load()
        await asyncio.gather(classify(long_text), *(classify(f"hi {index}") for index in range(10)))
    finally:
        await classifier.aclose()

    assert [len(batch) for batch in loader.backends["tiny-toxic"].batches] == [10, 1]
    assert answered[-1] == long_text
