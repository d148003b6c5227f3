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

from bot.core.model_folder import DEFAULT_THRESHOLD

FULL_DATA_PREVALENCE = 0.096  # share of toxic rows in the full Kaggle training set
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
    truth: np.ndarray,
    scores: np.ndarray,
    prevalence: float,
    precision_target: float = ACT_PRECISION,
    min_support: int = 10,
) -> ThresholdChoice:
    """The lowest cut from which precision, at ``prevalence``, stays at or above the target for every higher cut.

    Cuts with fewer than ``min_support`` positives above them are not allowed to veto (one mislabelled row at the very
    top would otherwise push the cut to 1). When no cut reaches the target, the cut with the highest precision among
    those that still catch 5% of the positives: acting stays as careful as the model allows.
    """
    from sklearn.metrics import precision_recall_curve

    positives = int((truth > 0).sum())
    if positives == 0:
        return ThresholdChoice(1.0, 0.0, 0.0, 0.0, 0)
    weights = label_prevalence_weights(truth, prevalence)
    precision, recall, cuts = precision_recall_curve(truth, scores, sample_weight=weights)
    precision, recall = precision[:-1], recall[:-1]
    supported = np.where(recall * positives >= min_support, precision, 1.0)
    floor = np.minimum.accumulate(supported[::-1])[::-1]  # precision of this cut and every supported cut above it
    reaching = np.flatnonzero((floor >= precision_target) & (precision >= precision_target))
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


def abusive_rows(label_rows: np.ndarray) -> np.ndarray:
    """1 where any known label is positive, 0 where the row is known harmless (toxic = 0), NaN where unknown."""
    any_positive = np.nansum(label_rows, axis=1) > 0
    harmless = label_rows[:, 0] == 0  # toxic is the first label: a row known not toxic is harmless
    return np.where(any_positive, 1.0, np.where(harmless, 0.0, np.nan))


@dataclass(frozen=True)
class OperatingPoints:
    """Flag (review: max F1) and act (automatic action: high precision at real prevalence) cuts of one label."""

    flag: ThresholdChoice
    act: ThresholdChoice


def choose_operating_points(
    probabilities: np.ndarray,
    label_rows: np.ndarray,
    labels: Sequence[str],
    precision_target: float = ACT_PRECISION,
    prevalence: float = FULL_DATA_PREVALENCE,
) -> dict[str, OperatingPoints]:
    """Per label: the max-F1 flag cut on its known cells, and the act cut (never below the flag cut).

    An action is wrong when it hits a harmless message, whatever label fired: the act cut of every label is the
    lowest one at which at least ``precision_target`` of the messages it acts on are abusive (any label), with
    harmless rows re-weighted so abusive ones make up ``prevalence`` (real traffic: 9.6% toxic), as a chat would see.
    """
    if list(labels[:1]) != ["toxic"]:
        raise ValueError("operating points need 'toxic' as the first label")
    abusive = abusive_rows(label_rows)
    known_abuse = ~np.isnan(abusive)
    points = {}
    for i, name in enumerate(labels):
        known = ~np.isnan(label_rows[:, i])
        flag = best_f1_threshold(label_rows[known, i], probabilities[known, i])
        act = act_threshold(abusive[known_abuse], probabilities[known_abuse, i], prevalence, precision_target)
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
