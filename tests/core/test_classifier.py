"""The classifier: one result per text, micro-batching, bad inputs, load failures and the model cache."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.core.backends import Backend, Prediction, load_backend
from bot.core.classifier import Classifier
from bot.core.errors import InferenceError, InvalidInputError, ModelLoadError, UnknownModelError
from bot.core.registry import ModelSpec, Registry, load_registry
from bot.core.types import Task

pytestmark = pytest.mark.asyncio


class CountingBackend:
    """Wraps a real backend and records every forward pass (its batch) and the threads that ran it."""

    def __init__(self, inner: Backend, fail_on: str | None = None) -> None:
        self.inner = inner
        self.labels = inner.labels
        self.max_length = inner.max_length
        self.encoder = getattr(inner, "encoder", None)
        self.folder = inner.folder
        self.batches: list[list[str]] = []
        self.threads: set[str] = set()
        self.running = 0
        self.max_running = 0
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> Prediction:
        with self._lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            self.batches.append(list(texts))
            self.threads.add(threading.current_thread().name)
            if self.fail_on is not None and self.fail_on in texts:
                raise RuntimeError("this batch cannot be scored")
            return self.inner.predict(texts)
        finally:
            with self._lock:
                self.running -= 1


class CountingLoader:
    """A loader that goes through the real ``load_backend`` (or a preloaded real backend) and counts loads."""

    def __init__(self, preloaded: dict[str, Backend] | None = None, fail_on: str | None = None) -> None:
        self.preloaded = preloaded or {}
        self.fail_on = fail_on
        self.loads: list[str] = []
        self.backends: dict[str, CountingBackend] = {}

    def __call__(self, spec: ModelSpec, *, cache_dir: object = None) -> Backend:
        self.loads.append(spec.name)
        inner = self.preloaded.get(spec.name) or load_backend(spec, cache_dir=cache_dir)
        self.backends[spec.name] = CountingBackend(inner, self.fail_on)
        return self.backends[spec.name]


@pytest.fixture
def loader(tf_backends: dict[str, Backend]) -> CountingLoader:
    return CountingLoader(tf_backends)


@pytest.fixture
def broken_registry(tiny_models, tmp_path: Path) -> Registry:
    """tiny-toxic plus a model whose weights are corrupt and one whose folder does not exist."""
    broken = tmp_path / "broken"
    shutil.copytree(tiny_models.multi_label_dir, broken)
    (broken / "tf_model.h5").write_bytes(b"\x00" * 64)
    entry = "    task: multi_label\n    runtime: tensorflow\n    max_length: 64\n"
    path = tmp_path / "models.yaml"
    path.write_text(
        f"default: tiny-toxic\nmodels:\n  tiny-toxic:\n    source: {{path: {tiny_models.multi_label_dir}}}\n{entry}"
        f"  broken:\n    source: {{path: {broken}}}\n{entry}  absent:\n    source: {{path: {tmp_path / 'no'}}}\n{entry}"
    )
    return load_registry(path)


async def test_classify_returns_one_classification_per_text_in_order(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader)
    texts = ["you are so stupid", "hello there", "I will find and kill you"]
    try:
        results = await classifier.classify(texts)
    finally:
        await classifier.aclose()

    direct = loader.backends["tiny-toxic"].inner.predict(texts).probabilities
    assert [result.model for result in results] == ["tiny-toxic"] * 3
    assert all(result.task is Task.MULTI_LABEL for result in results)
    np.testing.assert_allclose([result.scores for result in results], direct, atol=1e-5)
    assert [result.summary.toxic for result in results] == [True, False, True]
    assert results[0].summary.label == "insult" and results[0].summary.score == results[0].score("insult")
    assert results[2].summary.label == "threat"


async def test_single_label_summary_is_the_predicted_class(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader)
    try:
        (result,) = await classifier.classify(["what a lovely day"], model="tiny-sentiment")
    finally:
        await classifier.aclose()

    assert result.task is Task.SINGLE_LABEL
    assert result.summary.toxic is None
    assert result.summary.label == max(result.labels, key=result.score)
    assert result.summary.score == pytest.approx(max(result.scores))


async def test_hundred_concurrent_calls_share_a_few_forward_passes_and_each_gets_its_own_result(
    registry, loader
) -> None:
    classifier = Classifier(registry, loader=loader, max_batch=32, max_wait_ms=20)
    words = ["hello", "weekend", "park", "stupid", "idiot", "kill", "weather", "coffee", "game", "friend"]
    texts = [f"{first} {second}" for first in words for second in words]  # 100 distinct texts of known words
    try:
        await classifier.load("tiny-toxic")
        results = await asyncio.gather(*(classifier.classify([text]) for text in texts))
    finally:
        await classifier.aclose()

    batches = loader.backends["tiny-toxic"].batches
    assert sum(len(batch) for batch in batches) == 100
    assert len(batches) <= 8, f"{len(batches)} forward passes for 100 messages"
    assert max(len(batch) for batch in batches) <= 32
    reference = loader.backends["tiny-toxic"].inner
    for text, (result,) in zip(texts, results, strict=True):
        np.testing.assert_allclose(result.scores, reference.predict([text]).probabilities[0], atol=1e-5)
    assert len({result.scores for (result,) in results}) > 90  # distinct texts, distinct scores: a mix-up would show


async def test_one_long_text_gets_its_own_pass_instead_of_padding_the_short_ones(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader, max_batch=32, max_wait_ms=20)
    long_text = "this message goes on and on about the weekend at the park " * 6
    try:
        await classifier.load()
        await asyncio.gather(
            *(classifier.classify([f"hi {index}"]) for index in range(31)), classifier.classify([long_text])
        )
    finally:
        await classifier.aclose()

    assert sorted(len(batch) for batch in loader.backends["tiny-toxic"].batches) == [1, 31]


async def test_a_model_runs_in_one_thread_and_never_concurrently_with_itself(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader, max_batch=4, max_wait_ms=0)
    try:
        await asyncio.gather(*(classifier.classify([f"text {index}"]) for index in range(40)))
    finally:
        await classifier.aclose()

    backend = loader.backends["tiny-toxic"]
    assert backend.max_running == 1
    assert len(backend.threads) == 1
    assert threading.current_thread().name not in backend.threads  # off the event loop's thread


async def test_concurrent_first_requests_load_the_model_once(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader)
    try:
        await asyncio.gather(*(classifier.classify(["hello"], model="tiny-sentiment") for _ in range(10)))
    finally:
        await classifier.aclose()

    assert loader.loads == ["tiny-sentiment"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "x" * 50_000,
        "you are so stupid 🤬🤬🤬 👍🏽 👨‍👩‍👧",
        "z̸̢̛̯͎̗̈́̓͋a̵̛̠̗̪͌̈́l̴̢̛̗̈́g̷̛̗̪̈́o̶̗̪̓",
        "אתה כל כך טיפש مرحبا بك في المنتدى",
        "nul\x00in\x00the\x00middle",
        "lone surrogate \ud800 here",
        "\u202eright-to-left override\u202c and \u200bzero width",
    ],
    ids=["empty", "whitespace", "50k", "emoji", "zalgo", "rtl", "nul", "surrogate", "bidi-controls"],
)
async def test_unusual_texts_are_scored_without_error(registry, loader, text: str) -> None:
    classifier = Classifier(registry, loader=loader)
    try:
        (result,) = await classifier.classify([text])
    finally:
        await classifier.aclose()

    assert len(result.scores) == 6
    assert all(np.isfinite(score) and 0.0 <= score <= 1.0 for score in result.scores)


async def test_a_50000_character_message_is_truncated_and_flagged(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader)
    text = "you are so stupid " * 3000
    try:
        long, short = await classifier.classify([text, "you are so stupid"])
    finally:
        await classifier.aclose()

    assert long.truncated and not short.truncated
    assert len(loader.backends["tiny-toxic"].inner.encoder.cap(text)) <= 64 * 32  # capped before tokenising


async def test_nul_characters_are_stripped_before_scoring(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader)
    try:
        with_nul, without = await classifier.classify(["you are\x00 so stupid\x00", "you are so stupid"])
    finally:
        await classifier.aclose()

    assert with_nul.scores == pytest.approx(without.scores, abs=1e-6)


@pytest.mark.parametrize("texts", ["a plain string", None, [b"bytes"], ["ok", 42], [None], 7])
async def test_non_string_input_is_an_invalid_input_error(registry, loader, texts: object) -> None:
    classifier = Classifier(registry, loader=loader)
    try:
        with pytest.raises(InvalidInputError):
            await classifier.classify(texts)  # type: ignore[arg-type]
    finally:
        await classifier.aclose()
    assert loader.loads == []  # validated before any model is touched


async def test_empty_list_gives_empty_list(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader)
    try:
        assert await classifier.classify([]) == []
    finally:
        await classifier.aclose()


async def test_unknown_model_raises_unknown_model_error(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader)
    try:
        with pytest.raises(UnknownModelError):
            await classifier.classify(["hi"], model="nope")
    finally:
        await classifier.aclose()


async def test_a_model_that_fails_to_load_raises_while_loaded_models_keep_serving(broken_registry) -> None:
    loader = CountingLoader()  # real loads from disk
    classifier = Classifier(broken_registry, loader=loader, cache_size=1)
    try:
        before = await classifier.classify(["you are so stupid"])
        with pytest.raises(ModelLoadError, match="model 'broken' is unavailable"):
            await classifier.classify(["hi"], model="broken")
        with pytest.raises(ModelLoadError, match=r"model 'absent' is unavailable: no model files"):
            await classifier.classify(["hi"], model="absent")
        after = await classifier.classify(["you are so stupid"])
        assert classifier.loaded_models() == ["tiny-toxic"]
    finally:
        await classifier.aclose()

    assert after == before
    assert loader.loads.count("tiny-toxic") == 1  # never evicted by the failures


async def test_a_failed_load_is_not_retried_until_retry_after_has_passed(broken_registry) -> None:
    now = [0.0]
    loader = CountingLoader()
    classifier = Classifier(broken_registry, loader=loader, retry_after_s=30, clock=lambda: now[0])
    try:
        for _ in range(3):
            with pytest.raises(ModelLoadError):
                await classifier.classify(["hi"], model="broken")
        assert loader.loads == ["broken"]
        now[0] = 31.0
        with pytest.raises(ModelLoadError):
            await classifier.classify(["hi"], model="broken")
        assert loader.loads == ["broken", "broken"]
    finally:
        await classifier.aclose()


async def test_a_batch_that_fails_fails_only_its_callers(registry, tf_backends) -> None:
    loader = CountingLoader(tf_backends, fail_on="boom")
    classifier = Classifier(registry, loader=loader, max_wait_ms=0)
    try:
        with pytest.raises(InferenceError, match="tiny-toxic"):
            await classifier.classify(["boom"])
        (result,) = await classifier.classify(["hello"])
    finally:
        await classifier.aclose()

    assert len(result.scores) == 6


async def test_the_cache_keeps_the_most_recently_used_models(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader, cache_size=1)
    try:
        await classifier.classify(["hi"], model="tiny-toxic")
        await classifier.classify(["hi"], model="tiny-sentiment")
        assert classifier.loaded_models() == ["tiny-sentiment"]
        await classifier.classify(["hi"], model="tiny-toxic")
        assert classifier.loaded_models() == ["tiny-toxic"]
    finally:
        await classifier.aclose()

    assert loader.loads == ["tiny-toxic", "tiny-sentiment", "tiny-toxic"]


async def test_load_preloads_the_default_model(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader)
    try:
        await classifier.load()
        assert classifier.loaded_models() == ["tiny-toxic"]
    finally:
        await classifier.aclose()
    assert classifier.loaded_models() == []


async def test_a_cancelled_caller_does_not_disturb_the_others(registry, loader) -> None:
    classifier = Classifier(registry, loader=loader, max_wait_ms=50)
    try:
        await classifier.load()
        cancelled = asyncio.ensure_future(classifier.classify(["you idiot"]))
        kept = asyncio.ensure_future(classifier.classify(["hello there"]))
        await asyncio.sleep(0)
        cancelled.cancel()
        (result,) = await kept
    finally:
        await classifier.aclose()

    assert cancelled.cancelled()
    assert result.summary.toxic is False
    assert all("you idiot" not in batch for batch in loader.backends["tiny-toxic"].batches)


def test_summary_is_toxic_when_any_label_passes_its_own_threshold() -> None:
    from bot.core.classifier import summarize
    from bot.core.registry import ModelSpec

    spec = ModelSpec.model_validate(
        {
            "name": "m",
            "task": "multi_label",
            "source": {"hub": "o/n"},
            "runtime": "onnx",
            "thresholds": {"toxic": 0.8, "threat": 0.7},
        }
    )
    labels = ("toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate")

    threat = summarize(spec, labels, (0.52, 0.1, 0.1, 0.89, 0.3, 0.2))
    calm = summarize(spec, labels, (0.52, 0.1, 0.1, 0.69, 0.3, 0.2))

    assert threat.toxic is True and threat.label == "threat"
    assert calm.toxic is False
