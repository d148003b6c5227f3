"""A model backend whose scores follow words in the text, for tests of what happens *after* scoring.

It plugs into the real ``Classifier`` as its ``loader``, so batching and the service's path are the production ones;
only the neural network is replaced by a table, and nothing is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from bot.core.backends.base import Prediction
from bot.core.classifier import Classifier
from bot.core.labels import TOXICITY_LABELS
from bot.core.model_folder import FolderConfig
from bot.core.registry import ModelSpec, Registry, load_registry

# a word in the text -> the scores it sets (every other label stays at 0.02)
TOXIC_WORDS: Mapping[str, Mapping[str, float]] = {
    "stupid": {"toxic": 0.93, "insult": 0.91},
    "kill": {"toxic": 0.90, "threat": 0.85, "severe_toxic": 0.35},
    "damn": {"toxic": 0.72, "obscene": 0.81},
    "meh": {"toxic": 0.55},
}
SENTIMENT_WORDS: Mapping[str, Mapping[str, float]] = {"stupid": {"NEGATIVE": 0.97, "POSITIVE": 0.03}}

MODELS_YAML = """\
default: scripted-toxic
models:
  scripted-toxic:
    task: multi_label
    source: {hub: tests/scripted-toxic}
    runtime: onnx
    thresholds: {threat: 0.4}
    languages: [en]
  scripted-sentiment:
    task: single_label
    source: {hub: tests/scripted-sentiment}
    runtime: onnx
    labels: [NEGATIVE, POSITIVE]
"""


class ScriptedBackend:
    def __init__(self, labels: tuple[str, ...], words: Mapping[str, Mapping[str, float]]) -> None:
        self.labels = labels
        self.max_length = 64
        self.folder = FolderConfig()
        self._words = words

    def predict(self, texts: Sequence[str]) -> Prediction:
        rows = []
        for text in texts:
            scores = dict.fromkeys(self.labels, 0.02)
            for word, values in self._words.items():
                if word in text.lower():
                    scores.update(values)
            rows.append([scores[label] for label in self.labels])
        return Prediction(np.asarray(rows, dtype=np.float32), np.zeros(len(texts), dtype=bool))


def scripted_loader(spec: ModelSpec, *, cache_dir: object = None) -> ScriptedBackend:
    if spec.is_toxicity:
        return ScriptedBackend(spec.labels or TOXICITY_LABELS, TOXIC_WORDS)
    return ScriptedBackend(spec.labels or ("NEGATIVE", "POSITIVE"), SENTIMENT_WORDS)


def scripted_registry(folder: Path) -> Registry:
    path = folder / "models.yaml"
    path.write_text(MODELS_YAML, encoding="utf-8")
    return load_registry(path)


def scripted_classifier(registry: Registry) -> Classifier:
    return Classifier(registry, loader=scripted_loader, max_wait_ms=1)
