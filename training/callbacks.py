"""Keras callbacks: validation ROC-AUC, best checkpoint, resumable epoch checkpoints, throughput log."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import tf_keras as keras

log = logging.getLogger(__name__)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def roc_auc_per_label(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC-AUC of every label column over its known cells (NaN = unknown); NaN where a label has only one class."""
    from sklearn.metrics import roc_auc_score

    aucs = []
    for i in range(labels.shape[1]):
        known = ~np.isnan(labels[:, i])
        truth = labels[known, i]
        aucs.append(roc_auc_score(truth, scores[known, i]) if 0 < truth.sum() < len(truth) else np.nan)
    return np.array(aucs)


def auc_by_source(
    labels: np.ndarray, scores: np.ndarray, sources: np.ndarray, names: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Validation ROC-AUC per source and label (known cells only), plus the pooled ``all``; NaN entries dropped."""
    report = {}
    for source in ["all", *sorted(set(sources.tolist()))]:
        rows = np.ones(len(sources), bool) if source == "all" else sources == source
        aucs = roc_auc_per_label(labels[rows], scores[rows])
        entry = {name: round(float(auc), 4) for name, auc in zip(names, aucs, strict=True) if not np.isnan(auc)}
        if entry:
            entry["mean"] = round(float(np.mean(list(entry.values()))), 4)
        report[source] = entry
    return report


def predict_logits(model, batches) -> tuple[np.ndarray, np.ndarray]:
    """Run the model over ``(features, labels[, rows])`` batches; logits and labels in row order when rows are given."""
    logits, labels, rows = [], [], []
    for features, batch_labels, *batch_rows in batches:
        logits.append(np.asarray(model(features, training=False).logits, dtype=np.float32))
        labels.append(batch_labels)
        rows.extend(batch_rows)
    logits, labels = np.concatenate(logits), np.concatenate(labels)
    if rows:
        order = np.argsort(np.concatenate(rows))
        logits, labels = logits[order], labels[order]
    return logits, labels


class ValidationAUC(keras.callbacks.Callback):
    """Adds ``val_mean_auc`` and ``val_auc_<label>`` to the epoch logs; list it before callbacks that monitor them."""

    def __init__(
        self, make_batches, label_names: tuple[str, ...], sources: np.ndarray | None = None, history: Path | None = None
    ) -> None:
        super().__init__()
        self.make_batches = make_batches
        self.label_names = label_names
        self.sources = sources
        self.history = history
        self.last: tuple[np.ndarray, np.ndarray] | None = None
        self.by_source: dict[str, dict[str, float]] = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logits, labels = predict_logits(self.model, self.make_batches())
        aucs = roc_auc_per_label(labels, sigmoid(logits))
        self.last = (sigmoid(logits), labels)
        if self.sources is not None:
            self.by_source = auc_by_source(labels, sigmoid(logits), self.sources, self.label_names)
            log.info("epoch %d validation ROC-AUC by source: %s", epoch + 1, json.dumps(self.by_source))
            if self.history is not None:
                with open(self.history, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"epoch": epoch + 1, "by_source": self.by_source}) + "\n")
        if logs is not None:
            logs["val_mean_auc"] = float(np.nanmean(aucs))
            for name, auc in zip(self.label_names, aucs, strict=True):
                logs[f"val_auc_{name}"] = float(auc)
        log.info("epoch %d validation mean ROC-AUC %.4f", epoch + 1, float(np.nanmean(aucs)))


class SaveBest(keras.callbacks.Callback):
    """Keeps the best epoch by ``val_mean_auc`` as a ``save_pretrained`` folder with its validation predictions."""

    def __init__(self, folder: Path, tokenizer, validation: ValidationAUC) -> None:
        super().__init__()
        self.folder = folder
        self.tokenizer = tokenizer
        self.validation = validation
        metrics = folder / "metrics.json"
        self.best = json.loads(metrics.read_text())["val_mean_auc"] if metrics.exists() else -np.inf

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        score = (logs or {}).get("val_mean_auc", -np.inf)
        if score <= self.best:
            return
        self.best = score
        self.folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(self.folder)
        self.tokenizer.save_pretrained(self.folder)
        probabilities, labels = self.validation.last
        extra = {} if self.validation.sources is None else {"sources": self.validation.sources}
        np.savez_compressed(self.folder / "val_predictions.npz", probabilities=probabilities, labels=labels, **extra)
        record = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}}
        if self.validation.by_source:
            record["validation_auc_by_source"] = self.validation.by_source
        (self.folder / "metrics.json").write_text(json.dumps(record, indent=2))
        log.info("epoch %d is the best so far (%.4f): saved to %s", epoch + 1, score, self.folder)


class EpochCheckpoint(keras.callbacks.Callback):
    """Model + optimizer state every epoch, so an interrupted run resumes where it stopped."""

    def __init__(self, manager, epoch_variable) -> None:
        super().__init__()
        self.manager = manager
        self.epoch_variable = epoch_variable

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_variable.assign(epoch + 1)
        path = self.manager.save()
        log.info("epoch %d checkpoint: %s", epoch + 1, path)


class Throughput(keras.callbacks.Callback):
    """Logs examples/s and real (non-padding) tokens/s every ``every`` batches and per epoch."""

    def __init__(self, batch_tokens, every: int = 50) -> None:
        super().__init__()
        self.batch_tokens = batch_tokens  # callable: () -> (examples, tokens) counted so far
        self.every = every
        self.summary: dict[str, float] = {}

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.started = time.perf_counter()
        self.start_counts = self.batch_tokens()

    def _rates(self) -> tuple[float, float]:
        elapsed = time.perf_counter() - self.started
        examples, tokens = (now - before for now, before in zip(self.batch_tokens(), self.start_counts, strict=True))
        return examples / elapsed, tokens / elapsed

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if (batch + 1) % self.every == 0:
            examples_s, tokens_s = self._rates()
            loss = (logs or {}).get("loss", float("nan"))
            log.info("batch %d: loss %.4f, %.1f examples/s, %.0f tokens/s", batch + 1, loss, examples_s, tokens_s)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        examples_s, tokens_s = self._rates()
        self.summary = {"examples_per_s": examples_s, "tokens_per_s": tokens_s}
        if logs is not None:
            logs["examples_per_s"] = examples_s
            logs["tokens_per_s"] = tokens_s
