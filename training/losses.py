"""Per-label positive weighting of the binary cross-entropy, done inside the loss.

The original passed ``N / (6 x positives)`` as Keras ``class_weight``; with multi-hot targets Keras weights each
*sample* by its argmax label instead, so the rare labels were never up-weighted. Here every label's positive term is
scaled by its own weight, as in ``tf.nn.weighted_cross_entropy_with_logits``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def positive_weights(label_rows: np.ndarray, scheme: str) -> np.ndarray:
    """Weight of each label's positive term: ``original`` N/(k x pos), ``sqrt`` sqrt(neg/pos), ``none`` ones."""
    n_rows, n_labels = label_rows.shape
    positives = np.maximum(label_rows.sum(axis=0), 1.0)
    if scheme == "original":
        return (n_rows / (n_labels * positives)).astype(np.float32)
    if scheme == "sqrt":
        return np.sqrt((n_rows - positives) / positives).astype(np.float32)
    if scheme == "none":
        return np.ones(n_labels, dtype=np.float32)
    raise ValueError(f"unknown weighting scheme {scheme!r}")


def weighted_bce_numpy(labels: np.ndarray, logits: np.ndarray, pos_weight: Sequence[float]) -> float:
    """Reference formula (used by tests): mean over rows and labels of -(w y log p + (1 - y) log(1 - p))."""
    probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    weights = np.asarray(pos_weight, dtype=np.float64)
    terms = -(weights * labels * np.log(probabilities) + (1 - labels) * np.log(1 - probabilities))
    return float(terms.mean())


def make_weighted_bce(pos_weight: Sequence[float]):
    """A Keras loss: BCE with logits and a positive weight per label, averaged over labels and rows."""
    import tensorflow as tf

    weights = tf.constant(np.asarray(pos_weight, dtype=np.float32))

    def weighted_bce(y_true, logits):
        logits = tf.cast(logits, tf.float32)  # mixed precision computes logits in float16
        y_true = tf.cast(y_true, tf.float32)
        per_label = tf.nn.weighted_cross_entropy_with_logits(labels=y_true, logits=logits, pos_weight=weights)
        return tf.reduce_mean(per_label, axis=-1)

    return weighted_bce
