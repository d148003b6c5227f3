"""Occlusion explanations: the words that drove a label, with their spans in the user's text, in one classify call."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import pytest

from bot.core.backends import Backend
from bot.core.classifier import Classifier
from bot.core.explain import MAX_UNITS, Explanation, explain, explanation_label, word_spans
from bot.core.registry import Registry
from bot.core.types import Classification

pytestmark = pytest.mark.asyncio

SENTENCE = "you are a stupid idiot, thanks for the help"


class CountingClassifier:
    """The real classifier, counting the calls made to it and the texts of each."""

    def __init__(self, inner: Classifier) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    async def classify(self, texts: Sequence[str], model: str | None = None) -> list[Classification]:
        self.calls.append(list(texts))
        return await self.inner.classify(texts, model)


@pytest.fixture
async def classifier(registry: Registry, tf_backends: dict[str, Backend]):
    inner = Classifier(registry, loader=lambda spec, cache_dir=None: tf_backends[spec.name], max_wait_ms=1)
    yield CountingClassifier(inner)
    await inner.aclose()


async def test_insulting_words_outrank_thanks_on_a_model_that_knows_insults(classifier: CountingClassifier) -> None:
    explanation = await explain(classifier, SENTENCE, model="tiny-toxic", label="insult", top=10)
    assert explanation is not None and explanation.label == "insult"
    ranked = [item.word for item in explanation.words]  # only words that raised the score, highest first
    assert {"stupid", "idiot"} <= set(ranked)
    thanks_rank = ranked.index("thanks") if "thanks" in ranked else len(ranked)
    assert ranked.index("stupid") < thanks_rank and ranked.index("idiot") < thanks_rank
    for item in explanation.words:  # spans point into the user's own text
        assert SENTENCE[item.start : item.end] == item.word


async def test_the_text_and_every_variant_are_scored_in_one_call(classifier: CountingClassifier) -> None:
    await explain(classifier, SENTENCE, model="tiny-toxic")
    assert len(classifier.calls) == 1
    [texts] = classifier.calls
    assert texts[0] == SENTENCE and len(texts) == 1 + len(word_spans(SENTENCE))
    assert "you are a  idiot, thanks for the help" in texts  # "stupid" removed


async def test_known_scores_are_not_computed_again(classifier: CountingClassifier) -> None:
    [base] = await classifier.inner.classify([SENTENCE], "tiny-toxic")
    explanation = await explain(classifier, SENTENCE, model="tiny-toxic", base=base)
    assert explanation is not None and explanation.score == pytest.approx(base.score(explanation.label), abs=1e-6)
    assert len(classifier.calls[0]) == len(word_spans(SENTENCE))


async def test_a_text_without_words_has_no_explanation(classifier: CountingClassifier) -> None:
    assert await explain(classifier, "?! ...", model="tiny-toxic") is None
    assert classifier.calls == []


def test_long_texts_merge_neighbouring_words_so_the_cost_stays_bounded() -> None:
    text = " ".join(f"w{index}" for index in range(200))
    spans = word_spans(text)
    assert len(spans) <= MAX_UNITS
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(left[1] < right[0] for left, right in itertools.pairwise(spans))


def test_words_keep_inner_apostrophes_and_skip_punctuation() -> None:
    text = "don't, you idiot!"
    assert [text[start:end] for start, end in word_spans(text)] == ["don't", "you", "idiot"]


async def test_the_label_defaults_to_the_highest_fired_label(classifier: CountingClassifier) -> None:
    [base] = await classifier.inner.classify([SENTENCE], "tiny-toxic")
    scores = base.as_dict()
    assert explanation_label(base, ("threat", "insult")) == max(("threat", "insult"), key=scores.__getitem__)
    assert explanation_label(base) == base.summary.label


def test_an_explanation_survives_its_stored_form() -> None:
    original = Explanation("insult", 0.91, ())
    assert Explanation.from_json(original.to_json()) == original
    assert Explanation.from_json(None) is None
