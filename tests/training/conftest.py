"""Helpers for the training tests: a Jigsaw-format CSV of generated chat lines."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bot.core.labels import TOXICITY_LABELS
from tests.tiny_models import generate_corpus

COLUMNS = ("id", "comment_text", *TOXICITY_LABELS)


def write_jigsaw_csv(path: Path, rows: int = 240, seed: int = 11, columns: Sequence[str] = COLUMNS) -> Path:
    """``rows`` generated lines (half toxic, all six labels present) as a Jigsaw CSV with ``columns``."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for index, (text, labels) in enumerate(generate_corpus(rows, seed=seed)):
            record = {"id": f"{index:016x}", "comment_text": text, **{k: int(k in labels) for k in TOXICITY_LABELS}}
            writer.writerow([record[column] for column in columns])
    return path


def f1_at(truth: np.ndarray, score: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """F1 of ``score >= cut`` for every cut, counted by hand."""
    predicted = score[None, :] >= np.asarray(cuts, dtype=score.dtype)[:, None]
    hits = (predicted & (truth[None, :] > 0)).sum(axis=1)
    return 2 * hits / (predicted.sum(axis=1) + truth.sum())


@pytest.fixture
def jigsaw_csv(tmp_path: Path) -> Path:
    return write_jigsaw_csv(tmp_path / "rows.csv")
