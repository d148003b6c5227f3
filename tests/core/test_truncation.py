"""The ONNX backend serves a head_tail-trained model with the same tokens the training package fed it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from bot.core.backends.base import keep_head_and_tail
from training.data import encode

LONG = " ".join(f"word{i} stupid hello" for i in range(200))


@pytest.mark.parametrize("text", ["short and kind", LONG])
def test_keep_head_and_tail_matches_the_training_encoding(tiny_models, text: str) -> None:
    folder = Path(tiny_models.multi_label_dir)
    trained = encode([text], AutoTokenizer.from_pretrained(folder), max_length=32, truncation="head_tail")[0]
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    served = keep_head_and_tail(tokenizer.encode(text).ids, 32, 0.75)

    assert served == trained.tolist()
    assert len(served) <= 32


def test_onnx_backend_reads_head_tail_from_the_exported_config(tiny_models) -> None:
    from bot.core.backends.onnx import head_tail_share

    config = json.loads((Path(tiny_models.multi_label_dir) / "config.json").read_text())
    assert head_tail_share(config) is None
    config["moderation"] = {"truncation": "head_tail", "head_share": 0.5}
    assert head_tail_share(config) == 0.5
