"""The TensorFlow runtime: transformers 4.x TF classes, from a local folder or a hub id + revision (HF cache)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bot.core.backends.base import (
    Prediction,
    TextEncoder,
    activate,
    pad_rows,
    resolve_labels,
    serving_max_length,
)
from bot.core.errors import ModelLoadError
from bot.core.model_folder import SAFETENSORS_FILE, TF_WEIGHTS_FILE, FolderConfig, read_folder_config
from bot.core.registry import HubSource, ModelSpec

log = logging.getLogger(__name__)
# Files a TF model folder needs; tokenizers come as tokenizer.json or vocab.txt + tokenizer_config.json.
_HUB_PATTERNS = ["*.json", "*.txt", "*.model"]
_TF_WEIGHTS = TF_WEIGHTS_FILE
_SAFETENSORS = SAFETENSORS_FILE


class TensorFlowBackend:
    """A transformers TF sequence classifier behind a ``tf.function`` with dynamic batch and sequence length."""

    def __init__(self, spec: ModelSpec, model: Any, tokenizer: Any, folder: FolderConfig | None = None) -> None:
        import tensorflow as tf

        config = model.config
        self.spec = spec
        self.folder = folder or FolderConfig()
        self.labels = resolve_labels(spec, config.id2label, config.num_labels, self.folder)
        self.max_length = serving_max_length(spec, self.folder, getattr(config, "max_position_embeddings", None))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.encoder = TextEncoder(tokenizer.backend_tokenizer, max_length=self.max_length, folder=self.folder)
        self._model = model
        spec_ids = tf.TensorSpec([None, None], tf.int32)

        @tf.function(input_signature=[spec_ids, spec_ids], reduce_retracing=True)
        def forward(input_ids: tf.Tensor, attention_mask: tf.Tensor) -> tf.Tensor:
            return model(input_ids=input_ids, attention_mask=attention_mask, training=False).logits

        self._forward = forward

    def predict(self, texts: Sequence[str]) -> Prediction:
        if not texts:
            return Prediction(np.zeros((0, len(self.labels)), dtype=np.float32), np.zeros((0,), dtype=bool))
        rows, truncated = self.encoder.encode(texts)
        ids, mask = pad_rows(rows, self.pad_id)
        logits = self._forward(ids.astype(np.int32), mask.astype(np.int32)).numpy()
        return Prediction(probabilities=activate(logits, self.spec.task), truncated=truncated)

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """The raw model output for already tokenized input (for tests and exports)."""
        return self._forward(input_ids, attention_mask).numpy()


def load(spec: ModelSpec, *, cache_dir: str | Path | None = None) -> TensorFlowBackend:
    """Load ``spec`` (local folder or hub snapshot) into a ready backend; raises ModelLoadError.

    Hub models live in the normal Hugging Face cache (``HF_HOME``); ``cache_dir`` is for runtimes that keep
    converted files of their own, which this one does not.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # must precede the first TensorFlow import
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    folder = _hub_folder(spec, spec.source) if isinstance(spec.source, HubSource) else spec.source.path
    if not folder.is_dir():
        raise ModelLoadError(spec.name, f"the model folder {folder} does not exist")
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=True)
    except (OSError, ValueError) as error:
        raise ModelLoadError(spec.name, f"cannot load the tokenizer from {folder}: {_first_line(error)}") from error
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(spec.name, f"the tokenizer in {folder} has no fast (tokenizers) version")
    try:
        moderation = read_folder_config(folder)
    except ValueError as error:
        raise ModelLoadError(spec.name, str(error)) from error
    return TensorFlowBackend(spec, _load_model(spec, folder), tokenizer, moderation)


def _load_model(spec: ModelSpec, folder: Path) -> Any:
    from transformers import AutoConfig, TFAutoModelForSequenceClassification

    if (folder / _TF_WEIGHTS).is_file() or _safetensors_format(folder) == "tf":
        try:
            return TFAutoModelForSequenceClassification.from_pretrained(folder)
        except (OSError, ValueError) as error:
            raise ModelLoadError(spec.name, f"cannot load the weights in {folder}: {_first_line(error)}") from error
    if (folder / _SAFETENSORS).is_file():
        model = TFAutoModelForSequenceClassification.from_config(AutoConfig.from_pretrained(folder))
        load_torch_safetensors(model, folder / _SAFETENSORS)
        return model
    raise ModelLoadError(spec.name, f"no {_TF_WEIGHTS} or {_SAFETENSORS} in {folder}")


def _hub_folder(spec: ModelSpec, source: HubSource) -> Path:
    """The snapshot folder of ``source`` in the HF cache, downloading what is missing when the hub is reachable."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    def fetch(patterns: list[str]) -> Path:
        return Path(snapshot_download(source.hub, revision=source.revision, allow_patterns=patterns))

    where = f"{source.hub}@{source.revision}"
    try:
        folder = fetch([*_HUB_PATTERNS, _TF_WEIGHTS])
        if not (folder / _TF_WEIGHTS).is_file():
            folder = fetch([*_HUB_PATTERNS, _SAFETENSORS])
    except LocalEntryNotFoundError as error:
        raise ModelLoadError(
            spec.name,
            f"{where} is not in the Hugging Face cache and the hub cannot be reached: run once with network access "
            "(it is downloaded to the cache), or set HF_HOME to a cache that has it",
        ) from error
    except (RepositoryNotFoundError, RevisionNotFoundError) as error:
        raise ModelLoadError(spec.name, f"{where} does not exist on the hub: {_first_line(error)}") from error
    except (HfHubHTTPError, OSError) as error:
        raise ModelLoadError(spec.name, f"cannot download {where}: {_first_line(error)}") from error
    return folder


def _safetensors_format(folder: Path) -> str | None:
    path = folder / _SAFETENSORS
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as handle:
        return (handle.metadata() or {}).get("format")


def load_torch_safetensors(model: Any, weights: Path, *, new_head: bool = False) -> None:
    """Load PyTorch-format safetensors into a built TF model (transformers 4.57 cannot without torch).

    ``new_head``: the file is a base encoder (e.g. a sentence-transformers ``BertModel``, keys without the model's
    prefix) and the classifier head stays freshly initialised; every other missing tensor is an error.
    """
    from safetensors.numpy import load_file
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    state = load_file(str(weights))
    prefix = model.base_model_prefix
    if new_head and not any(key.startswith(prefix + ".") for key in state):
        state = {f"{prefix}.{key}": value for key, value in state.items()}
    _, info = load_pytorch_state_dict_in_tf2_model(
        model, state, allow_missing_keys=True, output_loading_info=True, skip_logger_warnings=True
    )
    missing = [name for name in info["missing_keys"] if not (new_head and "classifier" in name)]
    if missing:
        raise ValueError(f"{weights}: lacks {len(missing)} of the model's tensors, e.g. {missing[:3]}")
    log.info("loaded %d tensors from %s%s", len(state), weights, " (classifier head initialised)" if new_head else "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
