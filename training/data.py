"""Jigsaw CSV -> tokenised, split, length-bucketed ``tf.data`` pipelines."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """The CSV cannot be used as training data; the message says why."""


@dataclass(frozen=True)
class Encoded:
    """Token ids per row (no padding) and the multi-hot labels."""

    input_ids: list[np.ndarray]
    labels: np.ndarray  # (rows, labels) float32

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(ids) for ids in self.input_ids), dtype=np.int32, count=len(self.input_ids))

    def subset(self, indices: np.ndarray) -> Encoded:
        return Encoded([self.input_ids[i] for i in indices], self.labels[indices])


def load_jigsaw(csv_path: Path, labels: Sequence[str], text_column: str = "comment_text"):
    """Load the CSV with ``datasets`` and check it has the text and label columns."""
    import datasets

    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: no such CSV file")
    try:
        dataset = datasets.load_dataset("csv", data_files=str(csv_path), split="train")
    except Exception as error:  # datasets raises many kinds for unreadable files
        raise DataError(f"{csv_path}: cannot be read as CSV: {error}") from error
    missing = [column for column in (text_column, *labels) if column not in dataset.column_names]
    if missing:
        raise DataError(f"{csv_path}: missing columns {', '.join(missing)} (has {', '.join(dataset.column_names)})")
    if len(dataset) == 0:
        raise DataError(f"{csv_path}: no rows")
    return dataset


def label_matrix(dataset, labels: Sequence[str]) -> np.ndarray:
    return np.stack([np.asarray(dataset[label], dtype=np.float32) for label in labels], axis=1)


def stratified_split(label_rows: np.ndarray, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split that keeps every label, the rarest included, in both parts.

    Each row is put in the stratum of its rarest positive label (or "clean"), and each stratum is split on its own.
    """
    positives = label_rows.sum(axis=0)
    rarity_order = np.argsort(positives)  # rarest label first
    strata = np.full(len(label_rows), -1)
    for label_index in rarity_order[::-1]:  # rarest written last, so it wins
        strata[label_rows[:, label_index] > 0] = label_index
    rng = np.random.default_rng(seed)
    train, val = [], []
    for stratum in np.unique(strata):
        members = rng.permutation(np.flatnonzero(strata == stratum))
        n_val = max(1, round(len(members) * val_fraction)) if len(members) > 1 else 0
        val.append(members[:n_val])
        train.append(members[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def encode(texts: Sequence[str], tokenizer, max_length: int, truncation: str = "head", head_share: float = 0.75):
    """Batched fast tokenisation, cut exactly as the bot cuts (``bot.core.model_folder``: head or head+tail)."""
    from bot.core.model_folder import cap_text, truncate_tokens

    cleaned = [cap_text(text or "", max_length, truncation, head_share) for text in texts]
    body = max_length - 2  # [CLS] ... [SEP]
    pieces = tokenizer(cleaned, add_special_tokens=False, truncation=False)["input_ids"]
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    return [
        np.asarray([cls_id, *truncate_tokens(ids, body, truncation, head_share), sep_id], dtype=np.int32)
        for ids in pieces
    ]


def bucketed_batches(lengths: np.ndarray, batch_size: int, chunk: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle, sort by length within chunks of ``chunk`` rows, cut into batches, shuffle the batches."""
    order = rng.permutation(len(lengths))
    if chunk > 0:
        pieces = [order[start : start + chunk] for start in range(0, len(order), chunk)]
        order = np.concatenate([piece[np.argsort(lengths[piece], kind="stable")] for piece in pieces])
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def padding_share(lengths: np.ndarray, batches: Sequence[np.ndarray], pad_to: int | None = None) -> float:
    """Share of padding tokens when each batch is padded to its longest row (or to ``pad_to``)."""
    real = padded = 0
    for batch in batches:
        batch_lengths = lengths[batch]
        real += int(batch_lengths.sum())
        padded += len(batch) * (pad_to or int(batch_lengths.max()))
    return 1.0 - real / padded if padded else 0.0


def pad_batch(rows: Sequence[np.ndarray], pad_id: int, pad_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The backends' padding, in the int32 the TensorFlow training graph takes."""
    from bot.core.backends.base import pad_rows

    return pad_rows(rows, pad_id, pad_to, dtype=np.int32)


def iterate_batches(
    data: Encoded,
    batch_size: int,
    *,
    pad_id: int,
    chunk: int,
    seed: int | None,
    pad_to: int | None = None,
    with_rows: bool = False,
) -> Iterator[tuple]:
    """One epoch of padded batches ``(features, labels[, row indices])``.

    ``seed=None`` is for evaluation: no shuffling (sorted by length when ``chunk`` > 0); else shuffles with bucketing.
    """
    lengths = data.lengths
    if seed is None:
        order = np.argsort(lengths, kind="stable") if chunk > 0 else np.arange(len(lengths))
        batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    else:
        batches = bucketed_batches(lengths, batch_size, chunk, np.random.default_rng(seed))
    for batch in batches:
        ids, mask = pad_batch([data.input_ids[i] for i in batch], pad_id, pad_to)
        features = {"input_ids": ids, "attention_mask": mask}
        yield (features, data.labels[batch], batch) if with_rows else (features, data.labels[batch])
