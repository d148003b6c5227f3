"""The flood cache: copies of a text (as the model sees it) are scored once within the window, and never wrongly."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from bot.core.classifier import Classifier
from bot.core.errors import InferenceError
from bot.core.flood_cache import FloodCache
from tests.core.test_classifier import CountingLoader

pytestmark = pytest.mark.asyncio

RAID = ["you are so stupid", "I will find and kill you", "join my server for free nitro", "hello there", "go away"]


async def test_a_raid_is_scored_once_per_distinct_text_and_copies_get_the_same_scores(registry, tf_backends) -> None:
    loader = CountingLoader(tf_backends)
    classifier = Classifier(registry, loader=loader, max_wait_ms=5)
    rng = np.random.default_rng(3)
    # 80% copies of 5 texts, with case and spacing an uncased BERT tokenizer cannot see; 20% distinct messages
    copies = [rng.choice(RAID) for _ in range(160)]
    copies = [text.upper() if index % 3 == 0 else text.replace(" ", "  ") for index, text in enumerate(copies)]
    messages = copies + [f"message number {index} about the weekend" for index in range(40)]
    rng.shuffle(messages)
    try:
        await classifier.load()
        results = await asyncio.gather(*(classifier.classify([text]) for text in messages))
    finally:
        await classifier.aclose()

    scored = [text for batch in loader.backends["tiny-toxic"].batches for text in batch]
    assert len(scored) == 45  # 5 raid texts + 40 distinct ones
    reference = tf_backends["tiny-toxic"]
    for text, (result,) in zip(messages, results, strict=True):
        np.testing.assert_allclose(result.scores, reference.predict([text]).probabilities[0], atol=1e-5)
    assert classifier.flood.hits == 155 and classifier.flood.hit_rate == pytest.approx(155 / 200)


async def test_entries_expire_after_the_window(registry, tf_backends) -> None:
    now = [0.0]
    loader = CountingLoader(tf_backends)
    classifier = Classifier(registry, loader=loader, flood_ttl_s=30, clock=lambda: now[0])
    try:
        await classifier.classify(["you are so stupid"])
        now[0] = 10.0
        await classifier.classify(["you are so stupid"])
        now[0] = 45.0
        await classifier.classify(["you are so stupid"])
    finally:
        await classifier.aclose()

    assert len(loader.backends["tiny-toxic"].batches) == 2


async def test_a_failed_pass_is_not_remembered(registry, tf_backends) -> None:
    loader = CountingLoader(tf_backends, fail_on="poison")
    classifier = Classifier(registry, loader=loader)
    try:
        for _ in range(2):
            with pytest.raises(InferenceError):
                await classifier.classify(["poison"])
    finally:
        await classifier.aclose()

    assert len(loader.backends["tiny-toxic"].batches) == 2  # tried again, not served from the cache
    assert len(classifier.flood) == 0


async def test_the_cache_can_be_turned_off_and_is_bounded(registry, tf_backends) -> None:
    loader = CountingLoader(tf_backends)
    off = Classifier(registry, loader=loader, flood_size=0)
    try:
        for _ in range(3):
            await off.classify(["hello there"])
    finally:
        await off.aclose()
    assert len(loader.backends["tiny-toxic"].batches) == 3

    bounded = FloodCache(maxsize=2, ttl_s=60)
    loop = asyncio.get_running_loop()
    for key in ("a", "b", "c"):
        bounded.put(key, loop.create_future())
    assert len(bounded) == 2 and bounded.get("a") is None and bounded.get("c") is not None
