"""The one small interface every runtime implements, and the lazy dispatch from ``spec.runtime`` to a loader."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tokenizers import Tokenizer

from bot.core.errors import ModelLoadError
from bot.core.model_folder import FolderConfig, cap_text, truncate_tokens
from bot.core.registry import LocalSource, ModelSpec, has_weights
from bot.core.types import Task

# runtime -> "module:function"; modules are imported on first use so an ONNX-only bot never imports TensorFlow.
LOADERS: Mapping[str, str] = {
    "tensorflow": "bot.core.backends.tensorflow:load",
    "onnx": "bot.core.backends.onnx:load",
}


@dataclass(frozen=True)
class Prediction:
    """Scores of a batch: ``probabilities`` float32 (n, len(labels)); ``truncated`` bool (n,)."""

    probabilities: np.ndarray
    truncated: np.ndarray


class Backend(Protocol):
    """A loaded model. ``predict`` is synchronous and runs in a worker thread, never concurrently with itself.

    ``folder`` is the model folder's own ``moderation`` section (its thresholds, languages, truncation); empty for a
    model exported elsewhere.
    """

    labels: tuple[str, ...]
    max_length: int
    folder: FolderConfig

    def predict(self, texts: Sequence[str]) -> Prediction: ...


Loader = Callable[..., Backend]  # (spec, *, cache_dir) -> Backend


def load_backend(spec: ModelSpec, *, cache_dir: str | Path | None = None) -> Backend:
    """Load ``spec`` with the backend of its runtime; every failure becomes a ModelLoadError."""
    target = LOADERS.get(spec.runtime)
    if target is None:
        raise ModelLoadError(spec.name, f"no backend for runtime '{spec.runtime}'")
    source = spec.source
    if isinstance(source, LocalSource) and not has_weights(source.path):
        raise ModelLoadError(
            spec.name,
            f"no model files (config.json and weights) in {source.path}: export a trained model there "
            "(the training package does) or choose another model",
        )
    module_name, _, function_name = target.partition(":")
    try:
        loader: Loader = getattr(importlib.import_module(module_name), function_name)
    except ImportError as error:
        raise ModelLoadError(spec.name, f"the '{spec.runtime}' runtime is not installed ({error})") from error
    try:
        return loader(spec, cache_dir=cache_dir)
    except ModelLoadError:
        raise
    except Exception as error:  # a corrupt file must not take the process down: report it as this model's failure
        raise ModelLoadError(spec.name, f"{type(error).__name__}: {error}") from error


def activate(logits: np.ndarray, task: Task) -> np.ndarray:
    """Logits -> probabilities: sigmoid per label for multi_label, softmax over labels for single_label."""
    logits = np.asarray(logits, dtype=np.float32)
    if task is Task.MULTI_LABEL:
        return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def resolve_labels(
    spec: ModelSpec,
    id2label: Mapping[int | str, str] | None,
    num_outputs: int,
    folder: FolderConfig | None = None,
) -> tuple[str, ...]:
    """Labels from models.yaml if listed, else the model's own ``id2label``; checked against the output width and
    against the labels models.yaml's and the folder's thresholds name."""
    if spec.labels is not None:
        labels = spec.labels
    elif id2label:
        labels = tuple(id2label[key] for key in sorted(id2label, key=int))
    else:
        raise ModelLoadError(spec.name, "the model config has no id2label and models.yaml lists no labels")
    if len(labels) != num_outputs:
        raise ModelLoadError(spec.name, f"{len(labels)} labels but the model has {num_outputs} outputs")
    unknown = sorted(set(spec.thresholds) - set(labels))
    if unknown:
        raise ModelLoadError(spec.name, f"thresholds in models.yaml name unknown labels: {', '.join(unknown)}")
    unknown = sorted(set(folder.thresholds if folder else ()) - set(labels))
    if unknown:
        raise ModelLoadError(spec.name, f"thresholds in the folder's config.json name unknown labels: {unknown}")
    return labels


# pre-tokenizers that split on whitespace and drop it: runs of whitespace cannot change the tokens
_WHITESPACE_SPLITTERS = {"BertPreTokenizer", "Whitespace", "WhitespaceSplit"}


class TextEncoder:
    """Texts -> token ids the way the model was trained: the folder's truncation (``head`` or ``head_tail``).

    Both backends tokenise through this class, with the model folder's ``truncate_tokens`` (the function training
    uses), so the same text gives the same tokens in training, in the ONNX backend and in the TF backend. Works on any
    ``tokenizers`` template (``[CLS] $A [SEP]``, ``<s> $A </s>``, ...): the special tokens are found once, here.
    """

    def __init__(self, tokenizer: Any, *, max_length: int, folder: FolderConfig) -> None:
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())  # our own copy: its settings are ours alone
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.max_length = max_length
        self.truncation = folder.truncation
        self.head_share = folder.head_share
        probe = self.tokenizer.encode("a", add_special_tokens=False).ids
        full = self.tokenizer.encode("a").ids
        at = next((i for i in range(len(full) - len(probe) + 1) if full[i : i + len(probe)] == probe), 0)
        self.prefix, self.suffix = full[:at], full[at + len(probe) :]
        self.budget = max(1, max_length - len(self.prefix) - len(self.suffix))

    def cap(self, text: str) -> str:
        return cap_text(text, self.max_length, self.truncation, self.head_share)

    def normalize(self, text: str) -> str:
        """The text as the model sees it before splitting: texts with the same result get the same tokens."""
        text = self.cap(text)
        if self.tokenizer.normalizer is not None:
            text = self.tokenizer.normalizer.normalize_str(text)
        if type(self.tokenizer.pre_tokenizer).__name__ in _WHITESPACE_SPLITTERS:
            text = " ".join(text.split())
        return text

    def encode(self, texts: Sequence[str]) -> tuple[list[list[int]], np.ndarray]:
        """Token ids per text (special tokens included, no padding) and whether anything was cut, per text."""
        capped = [self.cap(text) for text in texts]
        bodies = [item.ids for item in self.tokenizer.encode_batch(capped, add_special_tokens=False)]
        rows = [
            [*self.prefix, *truncate_tokens(body, self.budget, self.truncation, self.head_share), *self.suffix]
            for body in bodies
        ]
        truncated = np.array(
            [
                len(body) > self.budget or len(short) < len(text)
                for body, short, text in zip(bodies, capped, texts, strict=True)
            ],
            dtype=bool,
        )
        return rows, truncated


def pad_rows(
    rows: Sequence[Sequence[int]], pad_id: int, width: int | None = None, dtype: type = np.int64
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of token ids -> ``input_ids`` and ``attention_mask`` padded to ``width`` (default: the longest)."""
    width = width or max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=dtype)
    mask = np.zeros((len(rows), width), dtype=dtype)
    for index, tokens in enumerate(rows):
        ids[index, : len(tokens)] = tokens
        mask[index, : len(tokens)] = 1
    return ids, mask


def serving_max_length(spec: ModelSpec, folder: FolderConfig, position_embeddings: int | None) -> int:
    """models.yaml's ``max_length`` when set there, else the folder's (what it was trained with); never past the
    model's position embeddings."""
    length = spec.max_length if "max_length" in spec.model_fields_set else (folder.max_length or spec.max_length)
    return min(length, position_embeddings) if position_embeddings else length
