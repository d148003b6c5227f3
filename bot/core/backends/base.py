"""The one small interface every runtime implements, and the lazy dispatch from ``spec.runtime`` to a loader."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.core.errors import ModelLoadError
from bot.core.registry import LocalSource, ModelSpec, has_weights
from bot.core.types import Task

# runtime -> "module:function"; modules are imported on first use so an ONNX-only bot never imports TensorFlow.
LOADERS: Mapping[str, str] = {
    "tensorflow": "bot.core.backends.tensorflow:load",
    "onnx": "bot.core.backends.onnx:load",
}
# Characters kept per allowed token before tokenising: the tokenizer truncates anyway, this only bounds its work.
CHARS_PER_TOKEN_CAP = 32


@dataclass(frozen=True)
class Prediction:
    """Scores of a batch: ``probabilities`` float32 (n, len(labels)); ``truncated`` bool (n,)."""

    probabilities: np.ndarray
    truncated: np.ndarray


class Backend(Protocol):
    """A loaded model. ``predict`` is synchronous and runs in a worker thread, never concurrently with itself."""

    labels: tuple[str, ...]
    max_length: int

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


def resolve_labels(spec: ModelSpec, id2label: Mapping[int | str, str] | None, num_outputs: int) -> tuple[str, ...]:
    """Labels from models.yaml if listed, else the model's own ``id2label``; checked against the output width."""
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
    return labels


def keep_head_and_tail(ids: list[int], max_length: int, head_share: float) -> list[int]:
    """Cut ``[CLS] body [SEP]`` to ``max_length`` keeping the start and the end of the body.

    This is the training package's ``head_tail`` truncation: a model trained that way must be served that way.
    """
    if len(ids) <= max_length:
        return ids
    body = max_length - 2
    head = max(1, int(body * head_share))
    return ids[: 1 + head] + ids[len(ids) - (body - head) - 1 :]


def cap_text(text: str, max_length: int) -> str:
    """Drop characters far beyond what ``max_length`` tokens can hold, so a 1 MB message costs no more than a page."""
    limit = max_length * CHARS_PER_TOKEN_CAP
    return text if len(text) <= limit else text[:limit]


@dataclass(frozen=True)
class Encoded:
    """A tokenized batch padded to its longest text: int32 arrays (n, length) and the truncated flags (n,)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    truncated: np.ndarray


def prepare_tokenizer(tokenizer: Any, *, max_length: int, pad_id: int, pad_token: str) -> Any:
    """Set a ``tokenizers.Tokenizer`` (the caller's own copy) to truncate at ``max_length`` and pad to the longest."""
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
    return tokenizer


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> Encoded:
    """Tokenize a non-empty batch with a ``prepare_tokenizer``-configured ``tokenizers.Tokenizer``.

    ``truncated`` is true when tokens past ``max_length`` were dropped (or the text was capped before tokenising).
    """
    capped = [cap_text(text, max_length) for text in texts]
    encodings = tokenizer.encode_batch(capped)
    return Encoded(
        input_ids=np.array([encoding.ids for encoding in encodings], dtype=np.int32),
        attention_mask=np.array([encoding.attention_mask for encoding in encodings], dtype=np.int32),
        truncated=np.array(
            [
                bool(encoding.overflowing) or len(c) < len(t)
                for encoding, c, t in zip(encodings, capped, texts, strict=True)
            ],
            dtype=bool,
        ),
    )
