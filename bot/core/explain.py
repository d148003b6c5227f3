"""Occlusion explanations: which of the user's words drove a label's score.

Each word of the user's text is removed in turn and the text scored again; how much the label's score drops is the
word's weight. Working on the user's words (character spans in their text) rather than on the model's sub-word
tokens means the answer needs no mapping back and is the same for every tokenizer and runtime. All variants go to the
classifier in ONE call, so the micro-batcher scores them in one or a few forward passes. The cost is bounded: past
``MAX_UNITS`` words, neighbouring words are merged into spans so there are never more than ``MAX_UNITS`` variants.
The service only explains messages it flagged or acted on, and ``/classify`` only on request.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core.types import Classification

MAX_UNITS = 64  # variants scored per explanation at most
TOP_WORDS = 5  # words kept in an explanation
# a word: letters, digits and inner apostrophes/hyphens ("don't", "f-ing"); punctuation alone is not a word
_WORD = re.compile(r"\w+(?:['’\-]\w+)*")


class TextClassifier(Protocol):
    async def classify(self, texts: Sequence[str], model: str | None = None) -> list[Classification]: ...


@dataclass(frozen=True, slots=True)
class WordWeight:
    """One word (or span of merged words) of the user's text and how much removing it lowers the label's score."""

    word: str
    start: int  # character offsets in the user's text: text[start:end] == word
    end: int
    weight: float


@dataclass(frozen=True, slots=True)
class Explanation:
    """The words that raised ``label``'s score most, highest first (only words that raised it)."""

    label: str
    score: float
    words: tuple[WordWeight, ...]

    def summary(self, limit: int = 3) -> str:
        """``insult 0.91: "idiot" +0.42, "stupid" +0.30`` (plain text; renderers escape it)."""
        shown = ", ".join(f'"{item.word}" {item.weight:+.2f}' for item in self.words[:limit])
        return f"{self.label} {self.score:.2f}: {shown or 'no single word stands out'}"

    def to_json(self) -> str:
        return json.dumps(
            {
                "label": self.label,
                "score": round(self.score, 6),
                "words": [[w.word, w.start, w.end, round(w.weight, 6)] for w in self.words],
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, raw: str | None) -> Explanation | None:
        """The stored form back; None for nothing stored (events logged before explanations existed)."""
        if not raw:
            return None
        data: Mapping[str, Any] = json.loads(raw)
        words = tuple(WordWeight(str(w), int(s), int(e), float(x)) for w, s, e, x in data["words"])
        return cls(label=str(data["label"]), score=float(data["score"]), words=words)


def word_spans(text: str, max_units: int = MAX_UNITS) -> list[tuple[int, int]]:
    """Character spans of the words of ``text``; past ``max_units`` words, runs of neighbours become one span."""
    spans = [match.span() for match in _WORD.finditer(text)]
    if len(spans) <= max_units:
        return spans
    size = math.ceil(len(spans) / max_units)
    return [(group[0][0], group[-1][1]) for group in (spans[i : i + size] for i in range(0, len(spans), size))]


def without(text: str, span: tuple[int, int]) -> str:
    """``text`` with the span removed."""
    start, end = span
    return text[:start] + text[end:]


def explanation_label(classification: Classification, candidates: Sequence[str] = ()) -> str:
    """The label to explain: the highest-scoring of ``candidates`` (the labels a decision fired on), else the
    verdict's label (the top label other than ``toxic``, or the predicted class)."""
    scores = classification.as_dict()
    known = [label for label in candidates if label in scores]
    if known:
        return max(known, key=scores.__getitem__)
    return classification.summary.label


async def explain(
    classifier: TextClassifier,
    text: str,
    *,
    model: str,
    label: str | None = None,
    base: Classification | None = None,
    top: int = TOP_WORDS,
    max_units: int = MAX_UNITS,
) -> Explanation | None:
    """Explain ``label`` (default: see ``explanation_label``) of ``text`` under ``model``; None for a text without
    words. ``base``: the text's scores when already known (otherwise they are computed in the same call)."""
    spans = word_spans(text, max_units)
    if not spans:
        return None
    variants = [without(text, span) for span in spans]
    batch = variants if base is not None else [text, *variants]
    results = await classifier.classify(batch, model)
    if base is None:
        base, results = results[0], results[1:]
    label = label or explanation_label(base)
    index = base.labels.index(label)
    score = round(base.scores[index], 6)  # what storage keeps, so a stored explanation equals the fresh one
    weights = [
        WordWeight(text[start:end], start, end, round(score - result.scores[index], 6))
        for (start, end), result in zip(spans, results, strict=True)
    ]
    raised = sorted((w for w in weights if w.weight > 0), key=lambda w: (-w.weight, w.start))
    return Explanation(label=label, score=score, words=tuple(raised[:top]))
