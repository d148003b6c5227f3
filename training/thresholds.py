"""Per-label decision thresholds, chosen on the validation split only (max F1), and the weights that re-balance it.

The Jigsaw rows here are about 3x richer in toxic comments than real traffic. ``prevalence_weights`` gives every
non-toxic row the weight that restores a chosen toxic prevalence (SOURCE.md's definition), for the weighted ROC-AUC
and, optionally, for choosing thresholds meant for real chat traffic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

DEFAULT_THRESHOLD = 0.5
FULL_DATA_PREVALENCE = 0.096  # share of toxic rows in the full Kaggle training set
# Share of each label in the full Kaggle training set (159,571 comments; jigsaw/SOURCE.md): the real-traffic base
# rates at which an act threshold must keep its precision.
REAL_PREVALENCE = {
    "toxic": 0.0958,
    "severe_toxic": 0.0100,
    "obscene": 0.0529,
    "threat": 0.0030,
    "insult": 0.0494,
    "identity_hate": 0.0088,
}
ACT_PRECISION = 0.90  # an automatic action must be right at least this often at real-traffic prevalence
VAL_PREDICTIONS = "val_predictions.npz"  # written by training.callbacks.SaveBest


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold of one label and what it scored on the data it was chosen on."""

    threshold: float
    f1: float
    precision: float
    recall: float
    positives: int


def prevalence_weights(label_rows: np.ndarray, labels: Sequence[str], prevalence: float) -> np.ndarray:
    """Row weights: toxic rows 1, others ``T x (1 - p) / (p x (N - T))`` so that toxic rows make up ``p``."""
    if not 0 < prevalence < 1:
        raise ValueError(f"prevalence must be between 0 and 1, got {prevalence}")
    if "toxic" not in labels:
        raise ValueError("prevalence weights need a 'toxic' label")
    column = label_rows[:, list(labels).index("toxic")]
    toxic, clean = column > 0, column == 0  # NaN (a source that does not know toxic) is neither: weight 1
    n_toxic, n_clean = int(toxic.sum()), int(clean.sum())
    if n_toxic == 0 or n_clean == 0:
        raise ValueError("prevalence weights need both toxic and non-toxic rows")
    weight = n_toxic * (1 - prevalence) / (prevalence * n_clean)
    return np.where(clean, weight, 1.0)


def best_f1_threshold(
    labels: np.ndarray, scores: np.ndarray, sample_weight: np.ndarray | None = None
) -> ThresholdChoice:
    """The score cut (``score >= threshold`` is positive) with the highest F1; 0.5 when there is no positive."""
    from sklearn.metrics import precision_recall_curve

    positives = int((labels > 0).sum())
    if positives == 0:
        return ThresholdChoice(DEFAULT_THRESHOLD, 0.0, 0.0, 0.0, 0)
    precision, recall, cuts = precision_recall_curve(labels, scores, sample_weight=sample_weight)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    best = int(np.argmax(f1))
    # round down so the row that set the cut stays on the positive side after rounding
    threshold = math.floor(float(cuts[best]) * 10_000) / 10_000
    return ThresholdChoice(threshold, float(f1[best]), float(precision[best]), float(recall[best]), positives)


def label_prevalence_weights(truth: np.ndarray, prevalence: float) -> np.ndarray:
    """Weights of one label's known rows: positives 1, negatives re-weighted so positives make up ``prevalence``."""
    positives = int((truth > 0).sum())
    negatives = len(truth) - positives
    if positives == 0 or negatives == 0:
        return np.ones(len(truth))
    return np.where(truth > 0, 1.0, positives * (1 - prevalence) / (prevalence * negatives))


def act_threshold(
    truth: np.ndarray, scores: np.ndarray, prevalence: float, precision_target: float = ACT_PRECISION
) -> ThresholdChoice:
    """The lowest cut from which precision, at ``prevalence``, stays at or above the target for every higher cut.

    When no cut reaches the target (a rare label whose negatives outnumber it 300 to 1), the cut with the highest
    precision among those that still catch 5% of the positives: acting stays as careful as the model allows.
    """
    from sklearn.metrics import precision_recall_curve

    positives = int((truth > 0).sum())
    if positives == 0:
        return ThresholdChoice(1.0, 0.0, 0.0, 0.0, 0)
    weights = label_prevalence_weights(truth, prevalence)
    precision, recall, cuts = precision_recall_curve(truth, scores, sample_weight=weights)
    precision, recall = precision[:-1], recall[:-1]
    # precision of every cut and all above it: the running minimum from the top
    floor = np.minimum.accumulate(precision[::-1])[::-1]
    reaching = np.flatnonzero(floor >= precision_target)
    if len(reaching):
        best = int(reaching[0])
    else:
        usable = np.flatnonzero(recall >= 0.05)
        best = int(usable[np.argmax(precision[usable])]) if len(usable) else len(cuts) - 1
    # round UP: every higher cut keeps the precision, while rounding down would let in rows below the cut
    threshold = min(1.0, math.ceil(float(cuts[best]) * 10_000) / 10_000)
    p, r = float(precision[best]), float(recall[best])
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return ThresholdChoice(threshold, f1, p, r, positives)


@dataclass(frozen=True)
class OperatingPoints:
    """Flag (review: max F1) and act (automatic action: high precision at real prevalence) cuts of one label."""

    flag: ThresholdChoice
    act: ThresholdChoice


def choose_operating_points(
    probabilities: np.ndarray,
    label_rows: np.ndarray,
    labels: Sequence[str],
    prevalence: dict[str, float] | None = None,
    precision_target: float = ACT_PRECISION,
) -> dict[str, OperatingPoints]:
    """Per label, on its known validation cells: the max-F1 flag cut and the act cut (never below the flag cut)."""
    prevalence = {**REAL_PREVALENCE, **(prevalence or {})}
    points = {}
    for i, name in enumerate(labels):
        known = ~np.isnan(label_rows[:, i])
        truth, scores = label_rows[known, i], probabilities[known, i]
        flag = best_f1_threshold(truth, scores)
        act = act_threshold(truth, scores, prevalence.get(name, FULL_DATA_PREVALENCE), precision_target)
        if act.threshold < flag.threshold:
            act = ThresholdChoice(flag.threshold, flag.f1, flag.precision, flag.recall, flag.positives)
        points[name] = OperatingPoints(flag, act)
    return points


def operating_point_map(points: dict[str, OperatingPoints]) -> dict[str, dict[str, float]]:
    """``{label: {"flag": x, "act": y}}``, the form models.yaml and the exported config.json carry."""
    return {name: {"flag": point.flag.threshold, "act": point.act.threshold} for name, point in points.items()}


def choose_thresholds(
    probabilities: np.ndarray,
    label_rows: np.ndarray,
    labels: Sequence[str],
    sample_weight: np.ndarray | None = None,
) -> dict[str, ThresholdChoice]:
    """Max-F1 threshold of every label column."""
    if probabilities.shape != label_rows.shape or probabilities.shape[1] != len(labels):
        raise ValueError(
            f"shapes differ: probabilities {probabilities.shape}, labels {label_rows.shape}, {len(labels)} names"
        )
    choices = {}
    for i, name in enumerate(labels):
        known = ~np.isnan(label_rows[:, i])
        weights = None if sample_weight is None else sample_weight[known]
        choices[name] = best_f1_threshold(label_rows[known, i], probabilities[known, i], weights)
    return choices


def load_val_predictions(model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, labels)`` of the validation split, saved beside the best checkpoint by training."""
    path = Path(model_dir) / VAL_PREDICTIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no validation predictions (written by `python -m training train` in best/)")
    with np.load(path) as saved:
        return saved["probabilities"].astype(np.float32), saved["labels"].astype(np.float32)


def as_report(choices: dict) -> dict[str, dict]:
    return {name: asdict(choice) for name, choice in choices.items()}


def threshold_map(choices: dict[str, ThresholdChoice]) -> dict[str, float]:
    return {name: choice.threshold for name, choice in choices.items()}
