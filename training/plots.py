"""PNG plots of an evaluation: ROC curves per label, and the training curves of the run (history.csv)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def roc_curves(
    label_rows: np.ndarray, probabilities: np.ndarray, labels: Sequence[str], path: Path, title: str = ""
) -> Path:
    """One ROC curve per label (with its AUC in the legend) on one chart."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6.4, 6.0))
    for i, name in enumerate(labels):
        truth = label_rows[:, i]
        if not 0 < truth.sum() < len(truth):
            continue  # a label with one class has no curve
        false_pos, true_pos, _ = roc_curve(truth, probabilities[:, i])
        axes.plot(false_pos, true_pos, label=f"{name} ({roc_auc_score(truth, probabilities[:, i]):.4f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title=title or "ROC curves", xlim=(0, 1))
    axes.legend(loc="lower right", title="label (ROC-AUC)")
    axes.grid(alpha=0.3)
    return _save(plt, figure, path)


def read_history(history_csv: Path) -> dict[str, list[float]]:
    """Columns of Keras' CSVLogger file as float lists (non-numeric cells become NaN)."""
    with open(history_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    columns: dict[str, list[float]] = {}
    for row in rows:
        for key, value in row.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = float("nan")
            columns.setdefault(key, []).append(number)
    return columns


def training_curves(history_csv: Path, path: Path, title: str = "") -> Path | None:
    """Training loss and validation ROC-AUC by epoch; ``None`` when the file has no epochs."""
    history = read_history(history_csv)
    epochs = history.get("epoch")
    if not epochs:
        return None
    x = [int(epoch) + 1 for epoch in epochs]  # CSVLogger counts from 0
    plt = _pyplot()
    figure, (loss_axes, auc_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for key in ("loss", "val_loss"):
        if key in history:
            loss_axes.plot(x, history[key], marker="o", label=key)
    loss_axes.set(xlabel="epoch", ylabel="weighted BCE", title="loss")
    loss_axes.legend()
    for key in sorted(k for k in history if k.startswith("val_auc_")):
        auc_axes.plot(x, history[key], marker=".", linewidth=1, label=key.removeprefix("val_auc_"))
    if "val_mean_auc" in history:
        auc_axes.plot(x, history["val_mean_auc"], marker="o", linewidth=2.5, color="black", label="mean")
    auc_axes.set(xlabel="epoch", ylabel="ROC-AUC", title="validation ROC-AUC")
    auc_axes.legend(fontsize="small")
    for axes in (loss_axes, auc_axes):
        axes.grid(alpha=0.3)
        axes.set_xticks(x)
    if title:
        figure.suptitle(title)
    return _save(plt, figure, path)


def _save(plt, figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
