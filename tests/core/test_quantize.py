"""Static int8: a message's scores are the same alone, in any batch, and with any padding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from bot.core.backends.base import pad_rows
from bot.core.backends.onnx import load
from bot.core.backends.onnx_export import INT8_FILE, export_folder
from bot.core.backends.onnx_quantize import batch_dependence
from bot.core.registry import LocalSource, Registry
from tests.tiny_models import generate_corpus

CALIBRATION = [text for text, _ in generate_corpus(200, seed=11)]


@pytest.fixture(scope="module")
def int8_dir(tiny_models, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("static-int8") / "tiny-toxic"
    export_folder(tiny_models.multi_label_dir, folder, fp32=False, int8=True, calibration_texts=CALIBRATION)
    return folder


def messages(count: int, seed: int) -> list[str]:
    """Chat lines of many lengths (none of them calibration lines)."""
    rng = np.random.default_rng(seed)
    lines = [text for text, _ in generate_corpus(count, seed=seed)]
    return [" ".join([line] * int(rng.integers(1, 6))) for line in lines]


def test_scores_do_not_depend_on_batch_mates_or_batch_size(registry: Registry, int8_dir: Path) -> None:
    spec = registry.get("tiny-toxic").model_copy(update={"runtime": "onnx", "source": LocalSource(path=int8_dir)})
    backend = load(spec, quantization="int8")
    texts = messages(300, seed=5)
    alone = np.concatenate([backend.predict([text]).probabilities for text in texts])
    rng = np.random.default_rng(0)

    worst = 0.0
    for _ in range(40):
        chosen = rng.choice(len(texts), size=int(rng.integers(1, 65)), replace=False)
        together = backend.predict([texts[i] for i in chosen]).probabilities
        worst = max(worst, float(np.abs(together - alone[chosen]).max()))

    assert backend.graph.name == INT8_FILE
    assert worst <= 1e-4
    assert alone.std(axis=0).max() > 0.01  # the scores do vary between texts: a constant model would pass trivially


def test_padding_does_not_change_a_row(int8_dir: Path, tiny_models) -> None:
    from tokenizers import Tokenizer

    session = ort.InferenceSession(str(int8_dir / INT8_FILE), providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(int8_dir / "tokenizer.json"))
    rows = [encoding.ids for encoding in tokenizer.encode_batch(messages(20, seed=8))]

    def logits(width: int | None) -> np.ndarray:
        ids, mask = pad_rows(rows, 0, width)
        return session.run(None, {"input_ids": ids, "attention_mask": mask})[0]

    np.testing.assert_allclose(logits(None), logits(64), atol=1e-4)
    assert batch_dependence(session, rows, trials=10) <= 1e-4
