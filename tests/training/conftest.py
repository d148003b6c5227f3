"""Helpers for the training tests: a Jigsaw-format CSV of generated chat lines."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.core.labels import TOXICITY_LABELS
from tests.tiny_models import generate_corpus

COLUMNS = ("id", "comment_text", *TOXICITY_LABELS)


def write_jigsaw_csv(path: Path, rows: int = 240, seed: int = 11, columns: Sequence[str] = COLUMNS) -> Path:
    """``rows`` generated lines (half toxic, all six labels present) in the Jigsaw CSV layout, limited to ``columns``."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for index, (text, labels) in enumerate(generate_corpus(rows, seed=seed)):
            record = {"id": f"{index:016x}", "comment_text": text, **{k: int(k in labels) for k in TOXICITY_LABELS}}
            writer.writerow([record[column] for column in columns])
    return path


@pytest.fixture
def jigsaw_csv(tmp_path: Path) -> Path:
    return write_jigsaw_csv(tmp_path / "rows.csv")
