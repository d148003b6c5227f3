"""Several sources in the Jigsaw columns: unknown cells stay unknown, every source is split, pairs stay together."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from bot.core.labels import TOXICITY_LABELS
from training.data import DataError
from training.sources import load_corpus, source_weights, split_corpus

HEADER = ["id", "comment_text", *TOXICITY_LABELS, "source"]


def _write(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    jigsaw = [
        [f"{i:016x}", f"wiki comment {i}", *("1" if i % 5 == 0 else "0",) * 6, "some/repo:file.csv"] for i in range(50)
    ]
    _write(tmp_path / "jigsaw" / "train.csv", jigsaw)
    hate = [
        [f"hate:{i}", f"tweet {i}", "1" if i % 2 else "", "", "", "", "", "1" if i % 2 else "0", "hate"]
        for i in range(40)
    ]
    _write(tmp_path / "extra" / "hate.csv", hate)
    pairs = tmp_path / "extra" / "meta" / "hate_pairs.csv"
    pairs.parent.mkdir()
    with open(pairs, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "matched_id"])
        writer.writerows([[f"hate:{i}", f"hate:{i + 1}"] for i in range(0, 40, 2)])
    return tmp_path


def test_empty_cells_are_unknown_not_negative(data_root: Path):
    corpus = load_corpus([data_root / "jigsaw" / "train.csv", data_root / "extra"], TOXICITY_LABELS)

    hate = corpus.sources == "hate"
    assert hate.sum() == 40 and (corpus.sources == "jigsaw").sum() == 50
    toxic = corpus.labels[hate, 0]
    assert np.isnan(toxic[0::2]).all() and (toxic[1::2] == 1).all()  # "" -> unknown, "1" -> 1
    assert np.isnan(corpus.labels[hate, 1:5]).all()
    assert (corpus.labels[hate, 5][0::2] == 0).all()  # "0" stays a known negative
    assert not np.isnan(corpus.labels[corpus.sources == "jigsaw"]).any()


def test_every_source_is_in_both_parts_and_pairs_never_straddle(data_root: Path):
    corpus = load_corpus([data_root / "jigsaw" / "train.csv", data_root / "extra"], TOXICITY_LABELS)

    train, val = split_corpus(corpus, 0.2, seed=3)

    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == 90
    for source in ("jigsaw", "hate"):
        assert (corpus.sources[val] == source).any() and (corpus.sources[train] == source).any()
    in_val = set(val.tolist())
    for first in range(50, 90, 2):  # hate rows come after the 50 jigsaw rows; pairs are (i, i + 1)
        assert (first in in_val) == (first + 1 in in_val)
    assert np.array_equal(split_corpus(corpus, 0.2, seed=3)[1], val)


def test_temperature_weights_flatten_the_mix_and_keep_mean_one():
    sources = np.array(["big"] * 90 + ["small"] * 10)

    natural = source_weights(sources, "natural")
    flat = source_weights(sources, "temperature", temperature=0.0)

    assert natural.tolist() == [1.0] * 100
    assert flat.mean() == pytest.approx(1.0)
    assert flat[sources == "big"].sum() == pytest.approx(flat[sources == "small"].sum())


def test_bad_label_cell_names_the_file_and_row(tmp_path: Path):
    path = _write(tmp_path / "bad.csv", [["a", "text", "yes", "0", "0", "0", "0", "0", "x"]])

    with pytest.raises(DataError, match=r"bad\.csv: row 2, toxic: label cell 'yes'"):
        load_corpus([path], TOXICITY_LABELS)


def test_a_missing_path_is_a_clear_error(tmp_path: Path):
    with pytest.raises(DataError, match="no such CSV file or folder"):
        load_corpus([tmp_path / "nope.csv"], TOXICITY_LABELS)
