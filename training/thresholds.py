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
    toxic = label_rows[:, list(labels).index("toxic")] > 0
    n_rows, n_toxic = len(toxic), int(toxic.sum())
    if n_toxic in (0, n_rows):
        raise ValueError("prevalence weights need both toxic and non-toxic rows")
    weight = n_toxic * (1 - prevalence) / (prevalence * (n_rows - n_toxic))
    return np.where(toxic, 1.0, weight)


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
    return {
        name: best_f1_threshold(label_rows[:, i], probabilities[:, i], sample_weight) for i, name in enumerate(labels)
    }


def load_val_predictions(model_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, labels)`` of the validation split, saved beside the best checkpoint by training."""
    path = Path(model_dir) / VAL_PREDICTIONS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no validation predictions (written by `python -m training train` in best/)")
    with np.load(path) as saved:
        return saved["probabilities"].astype(np.float32), saved["labels"].astype(np.float32)


def as_report(choices: dict[str, ThresholdChoice]) -> dict[str, dict]:
    return {name: asdict(choice) for name, choice in choices.items()}


def threshold_map(choices: dict[str, ThresholdChoice]) -> dict[str, float]:
    return {name: choice.threshold for name, choice in choices.items()}
