"""Build the multi-label classifier from a hub id or a local folder, PyTorch-format safetensors included."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from training.config import TrainConfig

log = logging.getLogger(__name__)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def label_config(base: str, labels: tuple[str, ...], revision: str | None = None):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(
        base,
        revision=revision,
        num_labels=len(labels),
        problem_type="multi_label_classification",
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )


def build_model(config: TrainConfig):
    """Return ``(model, tokenizer)``: a TF sequence classifier with the recipe's labels on the base encoder."""
    from transformers import AutoTokenizer, TFAutoModelForSequenceClassification

    from bot.core.backends.tensorflow import load_torch_safetensors

    base = config.base_model_path
    tokenizer = AutoTokenizer.from_pretrained(base, revision=config.base_model_revision, use_fast=True)
    model_config = label_config(base, config.labels, config.base_model_revision)
    folder = Path(base)
    torch_weights = folder / "model.safetensors"
    if folder.is_dir() and not (folder / "tf_model.h5").exists() and torch_weights.exists():
        if config.base_model_sha256 and sha256_of(torch_weights) != config.base_model_sha256:
            raise ValueError(f"{torch_weights}: sha256 does not match the recipe's base_model_sha256")
        model = TFAutoModelForSequenceClassification.from_config(model_config)
        model(model.dummy_inputs, training=False)
        load_torch_safetensors(model, torch_weights, new_head=True)
    else:
        model = TFAutoModelForSequenceClassification.from_pretrained(
            base, config=model_config, revision=config.base_model_revision
        )
    return model, tokenizer
