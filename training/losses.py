"""Per-label positive weighting of the binary cross-entropy, done inside the loss, with unknown cells masked out.

The original passed ``N / (6 x positives)`` as Keras ``class_weight``; with multi-hot targets Keras weights each
*sample* by its argmax label instead, so the rare labels were never up-weighted. Here every label's positive term is
scaled by its own weight, as in ``tf.nn.weighted_cross_entropy_with_logits``.

Rows from sources that do not know a label carry NaN there (``-1`` inside TensorFlow): that cell contributes nothing
to the loss, and the positive weights are counted over the known cells only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def positive_weights(label_rows: np.ndarray, scheme: str) -> np.ndarray:
    """Weight of each label's positive term: ``original`` N/(k x pos), ``sqrt`` sqrt(neg/pos), ``none`` ones."""
    n_labels = label_rows.shape[1]
    known = np.maximum((~np.isnan(label_rows)).sum(axis=0), 1.0)  # NaN = unknown cell, counted nowhere
    positives = np.maximum(np.nansum(label_rows, axis=0), 1.0)
    if scheme == "original":
        return (known / (n_labels * positives)).astype(np.float32)
    if scheme == "sqrt":
        return np.sqrt(np.maximum(known - positives, 1.0) / positives).astype(np.float32)
    if scheme == "none":
        return np.ones(n_labels, dtype=np.float32)
    raise ValueError(f"unknown weighting scheme {scheme!r}")


def weighted_bce_numpy(labels: np.ndarray, logits: np.ndarray, pos_weight: Sequence[float]) -> float:
    """Reference formula (used by tests): mean over rows and labels of -(w y log p + (1 - y) log(1 - p)).

    Unknown cells (NaN) count as 0 in the sum and still in the number of labels averaged over, as in the Keras loss.
    """
    probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    weights = np.asarray(pos_weight, dtype=np.float64)
    known = ~np.isnan(labels)
    y = np.nan_to_num(labels, nan=0.0)
    terms = -(weights * y * np.log(probabilities) + (1 - y) * np.log(1 - probabilities))
    return float(np.where(known, terms, 0.0).mean())


UNKNOWN = -1.0  # how an unknown label cell travels through TensorFlow


def make_weighted_bce(pos_weight: Sequence[float]):
    """A Keras loss: BCE with logits and a positive weight per label, averaged over labels and rows.

    Cells labelled ``UNKNOWN`` (negative) are masked: they add nothing for that row and label.
    """
    import tensorflow as tf

    weights = tf.constant(np.asarray(pos_weight, dtype=np.float32))

    def weighted_bce(y_true, logits):
        logits = tf.cast(logits, tf.float32)  # mixed precision computes logits in float16 / bfloat16
        y_true = tf.cast(y_true, tf.float32)
        known = tf.cast(y_true >= 0.0, tf.float32)
        targets = tf.maximum(y_true, 0.0)
        per_label = tf.nn.weighted_cross_entropy_with_logits(labels=targets, logits=logits, pos_weight=weights)
        return tf.reduce_mean(per_label * known, axis=-1)

    return weighted_bce
