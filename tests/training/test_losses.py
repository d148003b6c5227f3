"""Per-label positive weighting: the Keras loss matches the hand formula, and Keras class_weight would not do it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.losses import make_weighted_bce, positive_weights, weighted_bce_numpy


def test_positive_weights_follow_the_original_and_sqrt_formulas():
    rows = np.zeros((20, 3), dtype=np.float32)
    rows[:10, 0] = 1  # 10 positives
    rows[:4, 1] = 1  # 4
    rows[:1, 2] = 1  # 1
    assert positive_weights(rows, "original") == pytest.approx([20 / (3 * 10), 20 / (3 * 4), 20 / (3 * 1)])
    assert positive_weights(rows, "sqrt") == pytest.approx([1.0, math.sqrt(16 / 4), math.sqrt(19)])
    assert positive_weights(rows, "none").tolist() == [1.0, 1.0, 1.0]


def test_weighted_bce_matches_the_hand_computation():
    rng = np.random.default_rng(3)
    labels = (rng.random((16, 6)) < 0.3).astype(np.float32)
    logits = rng.normal(0, 3, (16, 6)).astype(np.float32)
    weights = [1.5, 5.6, 2.3, 10.8, 2.4, 6.0]

    per_row = make_weighted_bce(weights)(labels, logits).numpy()

    assert per_row.shape == (16,)
    assert float(per_row.mean()) == pytest.approx(weighted_bce_numpy(labels, logits, weights), rel=1e-5)
    # one term written out: a positive is scaled by its label's weight, a negative is not
    p = 1 / (1 + math.exp(-float(logits[0, 3])))
    term = -(weights[3] * math.log(p)) if labels[0, 3] else -math.log(1 - p)
    single = weighted_bce_numpy(labels[:1, 3:4], logits[:1, 3:4], weights[3:4])
    assert single == pytest.approx(term, rel=1e-9)


def _keras_loss(labels: np.ndarray, logits: np.ndarray, **fit_args) -> float:
    """The loss Keras reports for one full batch through an identity model that never changes (lr 0)."""
    import tf_keras as keras

    model = keras.Sequential(
        [keras.layers.Dense(labels.shape[1], kernel_initializer="identity", bias_initializer="zeros")]
    )
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    history = model.fit(logits, labels, batch_size=len(labels), epochs=1, verbose=0, **fit_args)
    return float(history.history["loss"][0])


def test_keras_class_weight_weights_samples_by_argmax_not_labels():
    """The original passed class_weight: a toxic AND threat row gets the toxic weight, never the threat one."""
    weights = positive_weights(np.eye(6)[[0] * 30 + [1, 2, 2, 3, 4, 4, 5, 5]], "original")
    toxic, threat = float(weights[0]), float(weights[3])
    row = np.array([[1, 0, 0, 1, 0, 0]], dtype=np.float32)  # toxic + threat
    logits = np.zeros_like(row)  # p = 0.5 everywhere: every BCE term is ln 2

    keras_loss = _keras_loss(row, logits, class_weight=dict(enumerate(weights.tolist())))
    per_label = weighted_bce_numpy(row, logits, weights)

    assert keras_loss == pytest.approx(toxic * math.log(2), rel=1e-5)  # sample weight = weight of argmax (toxic)
    assert per_label == pytest.approx((toxic + threat + 4) * math.log(2) / 6, rel=1e-6)
    assert float(make_weighted_bce(weights)(row, logits).numpy()[0]) == pytest.approx(per_label, rel=1e-5)
    assert threat > 3 * toxic and abs(keras_loss - per_label) > 0.1


def test_keras_class_weight_equals_argmax_sample_weights_on_a_batch():
    rng = np.random.default_rng(5)
    labels = (rng.random((12, 6)) < 0.35).astype(np.float32)
    labels[0] = 0  # an all-negative row: argmax is label 0 as well
    logits = rng.normal(0, 2, (12, 6)).astype(np.float32)
    weights = np.array([1.5, 5.6, 2.3, 10.8, 2.4, 6.0], dtype=np.float32)

    keras_loss = _keras_loss(labels, logits, class_weight=dict(enumerate(weights.tolist())))

    plain = np.array([weighted_bce_numpy(labels[i : i + 1], logits[i : i + 1], np.ones(6)) for i in range(12)])
    by_argmax = float(np.mean(weights[labels.argmax(axis=1)] * plain))
    assert keras_loss == pytest.approx(by_argmax, rel=1e-4)
    assert keras_loss != pytest.approx(weighted_bce_numpy(labels, logits, weights), rel=0.05)


def test_unknown_cells_add_nothing_to_the_loss():
    from training.losses import UNKNOWN

    rng = np.random.default_rng(8)
    logits = rng.normal(0, 2, (10, 6)).astype(np.float32)
    labels = (rng.random((10, 6)) < 0.4).astype(np.float32)
    masked = labels.copy()
    masked[:, 1:5] = np.nan  # a source that only knows toxic and identity_hate
    weights = [1.5, 5.6, 2.3, 10.8, 2.4, 6.0]

    keras_loss = make_weighted_bce(weights)(np.nan_to_num(masked, nan=UNKNOWN), logits).numpy()
    known_only = make_weighted_bce(weights)(labels * [1, 0, 0, 0, 0, 1], logits).numpy()

    assert float(keras_loss.mean()) == pytest.approx(weighted_bce_numpy(masked, logits, weights), rel=1e-5)
    # changing what an unknown cell "says" changes nothing, unlike reading it as a label
    flipped = labels.copy()
    flipped[:, 1:5] = 1 - flipped[:, 1:5]
    assert float(keras_loss.mean()) != pytest.approx(float(known_only.mean()), rel=1e-3)
    assert float(keras_loss.mean()) == pytest.approx(
        weighted_bce_numpy(np.where(np.isnan(masked), np.nan, flipped), logits, weights), rel=1e-5
    )


def test_positive_weights_count_known_cells_only():
    rows = np.full((20, 2), np.nan, dtype=np.float32)
    rows[:10, 0] = [1, 1, 0, 0, 0, 0, 0, 0, 0, 0]  # 10 known: 2 positive
    rows[:, 1] = 0
    rows[:4, 1] = 1  # 20 known: 4 positive

    assert positive_weights(rows, "sqrt") == pytest.approx([math.sqrt(8 / 2), math.sqrt(16 / 4)])
