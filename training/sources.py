"""Several labelled CSVs in the Jigsaw columns -> one corpus with unknown label cells, sources and pair groups.

An empty label cell means the source does not know that label for that row: it is kept as NaN and masked out of the
loss, the positive weights, the metrics and the thresholds (never read as 0). A folder stands for every ``*.csv``
directly inside it; a ``meta/*_pairs.csv`` side table beside them (``id, matched_id``) keeps paired rows (an original
and its minimal edit) in the same split.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data import DataError

SOURCE_NAME = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class Corpus:
    """Texts, labels (rows x labels, NaN = unknown), the source of each row and its split group."""

    texts: list[str]
    labels: np.ndarray
    sources: np.ndarray  # str per row
    groups: np.ndarray  # int per row: rows sharing a group go to the same split

    @property
    def known(self) -> np.ndarray:
        return ~np.isnan(self.labels)

    def subset(self, indices: np.ndarray) -> Corpus:
        return Corpus(
            [self.texts[i] for i in indices], self.labels[indices], self.sources[indices], self.groups[indices]
        )


def csv_files(paths: Sequence[Path]) -> list[Path]:
    """Expand folders to the CSVs directly inside them (sorted, so the corpus order never depends on the disk)."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.glob("*.csv") if p.is_file())
            if not found:
                raise DataError(f"{path}: folder holds no CSV file")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"{path}: no such CSV file or folder")
    return files


def _read_rows(
    path: Path, text_column: str, labels: Sequence[str]
) -> tuple[list[str], list[list[str]], list[str], list[str]]:
    csv.field_size_limit(1 << 26)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [column for column in (text_column, *labels) if column not in header]
        if missing:
            raise DataError(f"{path}: missing columns {', '.join(missing)} (has {', '.join(header) or 'no header'})")
        texts, cells, declared, ids = [], [], [], []
        for row in reader:
            texts.append(row[text_column] or "")
            cells.append([(row[label] or "").strip() for label in labels])
            declared.append(row.get("source") or "")
            ids.append(row.get("id") or "")
    if not texts:
        raise DataError(f"{path}: no rows")
    return texts, cells, declared, ids


def _label_values(path: Path, cells: list[list[str]], labels: Sequence[str]) -> np.ndarray:
    values = np.full((len(cells), len(labels)), np.nan, dtype=np.float32)
    for i, row in enumerate(cells):
        for j, cell in enumerate(row):
            if cell in ("1", "1.0"):
                values[i, j] = 1.0
            elif cell in ("0", "0.0"):
                values[i, j] = 0.0
            elif cell:
                raise DataError(f"{path}: row {i + 2}, {labels[j]}: label cell {cell!r} is not 0, 1 or empty")
    return values


def _source_name(path: Path, declared: list[str]) -> list[str]:
    """The file's own ``source`` column when it names sources; else the folder (``jigsaw/train.csv`` -> jigsaw)."""
    if declared and all(SOURCE_NAME.match(name) for name in declared):
        return declared
    return [path.parent.name or path.stem] * len(declared)


def _read_pairs(folders: set[Path]) -> list[tuple[str, str]]:
    pairs = []
    for folder in sorted(folders):
        for side_table in sorted((folder / "meta").glob("*_pairs.csv")):
            with open(side_table, newline="", encoding="utf-8") as handle:
                pairs += [(row["id"], row["matched_id"]) for row in csv.DictReader(handle) if row.get("matched_id")]
    return pairs


def _groups(ids: list[str], pairs: list[tuple[str, str]]) -> np.ndarray:
    """Union-find over the pairs: each row's group is the smallest row index it is paired with."""
    index = {row_id: i for i, row_id in enumerate(ids) if row_id}
    parent = np.arange(len(ids))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        if a in index and b in index:
            ra, rb = root(index[a]), root(index[b])
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(i) for i in range(len(ids))], dtype=np.int64)


def load_corpus(paths: Sequence[Path], labels: Sequence[str], text_column: str = "comment_text") -> Corpus:
    """Read every CSV (files or folders) into one corpus; raises ``DataError`` naming the file for bad input."""
    texts: list[str] = []
    values, sources, ids = [], [], []
    files = csv_files(paths)
    for path in files:
        file_texts, cells, declared, file_ids = _read_rows(path, text_column, labels)
        texts += file_texts
        values.append(_label_values(path, cells, labels))
        sources += _source_name(path, declared)
        ids += file_ids
    pairs = _read_pairs({path.parent for path in files})
    return Corpus(texts, np.concatenate(values), np.asarray(sources), _groups(ids, pairs))


def source_summary(corpus: Corpus, labels: Sequence[str]) -> dict[str, dict]:
    """Rows and positives / known cells per label, per source."""
    summary = {}
    for source in sorted(set(corpus.sources.tolist())):
        rows = corpus.sources == source
        block = corpus.labels[rows]
        summary[source] = {
            "rows": int(rows.sum()),
            **{
                label: f"{int(np.nansum(block[:, j]))}/{int((~np.isnan(block[:, j])).sum())}"
                for j, label in enumerate(labels)
            },
        }
    return summary


def split_corpus(corpus: Corpus, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of every source on its own, stratified by rarest positive label, pair groups kept together."""
    from training.data import stratified_split

    train_parts, val_parts = [], []
    for offset, source in enumerate(sorted(set(corpus.sources.tolist()))):
        rows = np.flatnonzero(corpus.sources == source)
        groups, inverse = np.unique(corpus.groups[rows], return_inverse=True)
        group_labels = np.zeros((len(groups), corpus.labels.shape[1]), dtype=np.float32)
        np.maximum.at(group_labels, inverse, np.nan_to_num(corpus.labels[rows], nan=0.0))
        _, val_groups = stratified_split(group_labels, val_fraction, seed + offset)
        in_val = np.isin(inverse, val_groups)
        train_parts.append(rows[~in_val])
        val_parts.append(rows[in_val])
    return np.sort(np.concatenate(train_parts)), np.sort(np.concatenate(val_parts))


def source_weights(sources: np.ndarray, scheme: str, temperature: float = 0.5) -> np.ndarray:
    """Per-row loss weight (mean 1) that gives source ``s`` the share ``n_s ** temperature`` of the total weight.

    ``natural`` weighs every row 1 (sources count by their size); ``temperature`` flattens the mix so the large
    sources neither drown the small chat-like ones nor get drowned by them (temperature 1 = natural, 0 = equal).
    """
    if scheme == "natural":
        return np.ones(len(sources), dtype=np.float32)
    if scheme != "temperature":
        raise ValueError(f"unknown source weighting {scheme!r}")
    _, inverse, counts = np.unique(sources, return_inverse=True, return_counts=True)
    share = counts.astype(np.float64) ** temperature
    share /= share.sum()
    per_row = share / counts  # weight of one row of each source
    weights = per_row[inverse]
    return (weights / weights.mean()).astype(np.float32)
