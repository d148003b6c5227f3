"""The seeded validation split: reproducible, complete, and every label (the rarest too) on both sides."""

from __future__ import annotations

import numpy as np

from training.data import stratified_split


def _labels(rows: int = 400, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = np.zeros((rows, 6), dtype=np.float32)
    labels[:, 0] = rng.random(rows) < 0.3
    labels[:, 2] = rng.random(rows) < 0.1
    labels[rng.choice(rows, 3, replace=False), 3] = 1  # a very rare label: 3 rows
    labels[rng.choice(rows, 2, replace=False), 5] = 1  # the rarest: 2 rows
    labels[rng.choice(rows, 12, replace=False), 1] = 1
    labels[rng.choice(rows, 9, replace=False), 4] = 1
    return labels


def test_same_seed_gives_the_same_split_and_another_seed_another():
    labels = _labels()
    first, second = stratified_split(labels, 0.1, 42), stratified_split(labels, 0.1, 42)
    other = stratified_split(labels, 0.1, 7)

    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])
    assert not np.array_equal(first[1], other[1])


def test_split_is_a_partition_of_the_requested_size():
    labels = _labels()
    train, val = stratified_split(labels, 0.1, 42)

    assert np.intersect1d(train, val).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(len(labels)))
    assert 0.08 <= len(val) / len(labels) <= 0.14


def test_rare_labels_land_in_both_parts():
    labels = _labels()
    for seed in range(5):
        train, val = stratified_split(labels, 0.1, seed)
        assert (labels[train].sum(axis=0) > 0).all(), f"seed {seed}: a label is missing from train"
        assert (labels[val].sum(axis=0) > 0).all(), f"seed {seed}: a label is missing from validation"
