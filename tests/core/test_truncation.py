"""Both backends serve a model with the tokens the training package fed it (the folder's truncation)."""

from __future__ import annotations

import json
import shutil

import pytest
from transformers import AutoTokenizer

from bot.core.backends import load_backend
from bot.core.registry import Registry
from training.data import encode

LONG = " ".join(f"word{i} stupid hello" for i in range(200))
TEXTS = ["short and kind", LONG, "you are so stupid " * 40 + "but I will find and kill you"]


@pytest.fixture(scope="module")
def head_tail_registry(tiny_models, registry: Registry, tmp_path_factory) -> Registry:
    """tiny-toxic with ``truncation: head_tail`` (head share 0.5) in its config, served by both runtimes."""
    from bot.core.backends.onnx_export import export_folder

    root = tmp_path_factory.mktemp("head-tail")
    tf_dir = root / "tf"
    shutil.copytree(tiny_models.multi_label_dir, tf_dir)
    config = json.loads((tf_dir / "config.json").read_text())
    config["moderation"] = {"truncation": "head_tail", "head_share": 0.5, "max_length": 32}
    (tf_dir / "config.json").write_text(json.dumps(config))
    export_folder(tf_dir, root / "onnx", fp32=True, int8=False)
    base = registry.get("tiny-toxic").model_dump(exclude={"max_length"})
    specs = {
        runtime: registry.get("tiny-toxic").model_validate(
            {**base, "name": f"ht-{runtime}", "runtime": runtime, "source": {"path": root / folder}}
        )
        for runtime, folder in (("tensorflow", "tf"), ("onnx", "onnx"))
    }
    return Registry(path=registry.path, default="ht-onnx", specs={spec.name: spec for spec in specs.values()})


@pytest.mark.parametrize("runtime", ["tensorflow", "onnx"])
def test_backends_serve_the_tokens_training_encodes(tiny_models, head_tail_registry: Registry, runtime: str) -> None:
    backend = load_backend(head_tail_registry.get(f"ht-{runtime}"))
    tokenizer = AutoTokenizer.from_pretrained(tiny_models.multi_label_dir)
    trained = encode(TEXTS, tokenizer, 32, "head_tail", 0.5)

    rows, truncated = backend.encoder.encode(TEXTS)

    assert backend.max_length == 32  # from the folder: models.yaml does not set it here
    assert rows == [ids.tolist() for ids in trained]
    assert truncated.tolist() == [False, True, True]
    assert tokenizer.decode(rows[2], skip_special_tokens=True).endswith("kill you")  # the tail is kept


def test_tensorflow_and_onnx_score_a_long_text_alike(head_tail_registry: Registry) -> None:
    tf_backend = load_backend(head_tail_registry.get("ht-tensorflow"))
    onnx_backend = load_backend(head_tail_registry.get("ht-onnx"))

    tf_scores = tf_backend.predict(TEXTS).probabilities
    onnx_scores = onnx_backend.predict(TEXTS).probabilities

    assert abs(tf_scores - onnx_scores).max() < 1e-4
    assert tf_backend.folder.truncation == onnx_backend.folder.truncation == "head_tail"
