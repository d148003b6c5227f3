"""Evaluation figures: max-F1 thresholds, the prevalence-weighted ROC-AUC of SOURCE.md, the Markdown report."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from bot.core.labels import TOXICITY_LABELS
from tests.training.conftest import f1_at
from training.evaluate import compute_metrics, render_markdown
from training.thresholds import best_f1_threshold, choose_thresholds, prevalence_weights


def _scored(rows: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random((rows, 6)) < [0.3, 0.05, 0.15, 0.03, 0.15, 0.05]).astype(np.float32)
    labels[:, 0] = np.maximum(labels[:, 0], labels[:, 1:].max(axis=1))  # every labelled row is toxic
    scores = np.clip(labels * 0.35 + rng.random(labels.shape) * 0.65, 0, 1).astype(np.float32)
    return scores, labels


def test_max_f1_threshold_beats_every_other_cut():
    scores, labels = _scored()
    for column in range(6):
        truth, score = labels[:, column], scores[:, column]
        choice = best_f1_threshold(truth, score)
        brute = f1_at(truth, score, np.unique(score)).max()
        assert f1_at(truth, score, [choice.threshold])[0] == pytest.approx(brute)  # rounding kept the cut's row
        assert f1_score(truth, score >= choice.threshold) == pytest.approx(brute)
        assert choice.f1 == pytest.approx(brute)
        assert choice.positives == int(truth.sum())


def test_a_label_without_positives_keeps_the_default_threshold():
    choice = best_f1_threshold(np.zeros(10), np.linspace(0, 1, 10))
    assert (choice.threshold, choice.positives) == (0.5, 0)


def test_choose_thresholds_names_every_label():
    scores, labels = _scored()
    choices = choose_thresholds(scores, labels, TOXICITY_LABELS)
    assert list(choices) == list(TOXICITY_LABELS)
    with pytest.raises(ValueError, match="shapes differ"):
        choose_thresholds(scores[:, :5], labels, TOXICITY_LABELS)


def test_prevalence_weight_follows_the_source_formula():
    labels = np.zeros((10, 6), dtype=np.float32)
    labels[:4, 0] = 1  # N = 10, T = 4
    weights = prevalence_weights(labels, TOXICITY_LABELS, 0.096)
    assert weights[:4].tolist() == [1.0] * 4
    assert weights[4:] == pytest.approx([4 * 0.904 / (0.096 * 6)] * 6)


def test_weighted_roc_auc_equals_the_auc_with_non_toxic_rows_repeated():
    """Weight 3 on every non-toxic row must give the plain ROC-AUC of a set where they appear three times."""
    scores, labels = _scored(rows=120, seed=4)
    toxic = labels[:, 0] > 0
    n_rows, n_toxic = len(toxic), int(toxic.sum())
    prevalence = n_toxic / (n_toxic + 3 * (n_rows - n_toxic))  # solves T(1-p) / (p(N-T)) = 3

    metrics = compute_metrics(labels, scores, TOXICITY_LABELS, dict.fromkeys(TOXICITY_LABELS, 0.5), prevalence)

    repeated = np.concatenate([np.flatnonzero(toxic), *[np.flatnonzero(~toxic)] * 3])
    assert metrics["non_toxic_weight"] == pytest.approx(3.0)
    for column, name in enumerate(TOXICITY_LABELS):
        expected = roc_auc_score(labels[repeated, column], scores[repeated, column])
        assert metrics["per_label"][name]["roc_auc_weighted"] == pytest.approx(expected)
        plain = roc_auc_score(labels[:, column], scores[:, column])
        assert metrics["per_label"][name]["roc_auc"] == pytest.approx(plain)
    assert metrics["mean"]["roc_auc_weighted"] == pytest.approx(
        np.mean([row["roc_auc_weighted"] for row in metrics["per_label"].values()])
    )


def test_precision_recall_f1_are_taken_at_each_labels_threshold():
    scores, labels = _scored()
    thresholds = dict(zip(TOXICITY_LABELS, [0.3, 0.4, 0.5, 0.6, 0.7, 0.8], strict=True))
    metrics = compute_metrics(labels, scores, TOXICITY_LABELS, thresholds, prevalence=None)
    for column, name in enumerate(TOXICITY_LABELS):
        row = metrics["per_label"][name]
        predicted = scores[:, column] >= thresholds[name]
        hits = float((predicted & (labels[:, column] > 0)).sum())
        assert row["threshold"] == thresholds[name]
        assert row["precision"] == pytest.approx(hits / predicted.sum())
        assert row["recall"] == pytest.approx(hits / labels[:, column].sum())
        assert "roc_auc_weighted" not in row  # no prevalence asked


def test_markdown_report_has_a_row_per_label_and_the_headline_figures():
    scores, labels = _scored()
    metrics = compute_metrics(labels, scores, TOXICITY_LABELS, dict.fromkeys(TOXICITY_LABELS, 0.5))
    report = {
        "model": "m",
        "data": "d.csv",
        "runtime": "onnx",
        "quantization": "int8",
        "max_length": 128,
        "thresholds_source": "config.json",
        "weighted_prevalence": 0.096,
        "plots": ["roc_curves.png"],
        **metrics,
    }
    text = render_markdown(report)
    assert f"**{metrics['mean']['roc_auc']:.4f}**" in text
    assert f"**{metrics['mean']['roc_auc_weighted']:.4f}**" in text
    assert all(f"| {name} | {int(labels[:, i].sum())} |" in text for i, name in enumerate(TOXICITY_LABELS))
    assert "![roc_curves.png](roc_curves.png)" in text


def test_act_cut_keeps_precision_at_real_prevalence_and_never_undercuts_flag():
    from training.thresholds import act_threshold, choose_operating_points

    rng = np.random.default_rng(4)
    truth = (rng.random(4000) < 0.3).astype(np.float32)
    scores = np.clip(truth * 0.35 + rng.random(4000) * 0.65, 0, 1)

    act = act_threshold(truth, scores, prevalence=0.05, precision_target=0.9)
    negatives_weight = truth.sum() * 0.95 / (0.05 * (1 - truth).sum())

    def precision_at(cut: float) -> float:
        above = scores >= cut
        return truth[above].sum() / (truth[above].sum() + negatives_weight * (1 - truth[above]).sum())

    assert precision_at(act.threshold) >= 0.9
    assert precision_at(act.threshold - 0.05) < 0.9  # the lowest such cut, not just any high one

    # a row harmless for every label (toxic 0), an abusive one known only as identity_hate, one of unknown harm
    labels = np.zeros((4000, 6), dtype=np.float32)
    labels[:, 0] = truth
    labels[:, 4] = np.where(rng.random(4000) < 0.5, np.nan, truth)
    labels[:100, 0] = np.nan
    points = choose_operating_points(np.repeat(scores[:, None], 6, axis=1), labels, TOXICITY_LABELS)
    for point in points.values():
        assert point.act.threshold >= point.flag.threshold
    assert points["insult"].flag.positives < points["toxic"].flag.positives  # unknown cells are not counted
