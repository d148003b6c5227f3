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


def _load_torch_safetensors(model, weights: Path) -> None:
    """transformers 4.57 cannot read PyTorch safetensors into TF without torch: go through numpy."""
    from safetensors.numpy import load_file
    from transformers.modeling_tf_pytorch_utils import load_pytorch_state_dict_in_tf2_model

    state = load_file(str(weights))
    prefix = model.base_model_prefix
    if not any(key.startswith(prefix + ".") for key in state):  # a bare encoder (e.g. sentence-transformers BertModel)
        state = {f"{prefix}.{key}": value for key, value in state.items()}
    _, info = load_pytorch_state_dict_in_tf2_model(
        model, state, allow_missing_keys=True, output_loading_info=True, skip_logger_warnings=True
    )
    missing = [name for name in info["missing_keys"] if "classifier" not in name]
    if missing:
        raise ValueError(f"{weights}: base weights lack {len(missing)} tensors, e.g. {missing[:3]}")
    log.info("loaded %d base tensors from %s (classifier head initialised)", len(state), weights)


def build_model(config: TrainConfig):
    """Return ``(model, tokenizer)``: a TF sequence classifier with the recipe's labels on the base encoder."""
    from transformers import AutoTokenizer, TFAutoModelForSequenceClassification

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
        _load_torch_safetensors(model, torch_weights)
    else:
        model = TFAutoModelForSequenceClassification.from_pretrained(
            base, config=model_config, revision=config.base_model_revision
        )
    return model, tokenizer
