"""`python -m training evaluate MODEL_DIR --data CSV`: ROC-AUC (plain and prevalence-weighted), PR-AUC, P/R/F1.

The model runs through the bot's own backends, so a TF ``save_pretrained`` folder, an ONNX fp32 folder and an int8
folder are scored exactly as the bot would score them (same tokenizer settings, same truncation).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.core.model_folder import MODERATION_KEY
from training.thresholds import (
    FULL_DATA_PREVALENCE,
    VAL_PREDICTIONS,
    choose_thresholds,
    load_val_predictions,
    prevalence_weights,
    threshold_map,
)

log = logging.getLogger(__name__)
FALLBACK_MAX_LENGTH = 512


class EvaluationError(ValueError):
    """The model folder or the data cannot be evaluated; the message says why."""


@dataclass(frozen=True)
class ModelFolder:
    """What evaluation needs to know about a model folder before loading it."""

    path: Path
    runtime: str  # "onnx" | "tensorflow"
    labels: tuple[str, ...]
    max_length: int
    thresholds: dict[str, float]
    thresholds_source: str
    quantization: str | None = None  # onnx only: "fp32" | "int8"
    run_dir: Path | None = None  # the training run the folder came from, when known
    config: dict = field(default_factory=dict, repr=False)


def resolve_model_dir(path: Path) -> Path:
    """A run folder means its ``best/`` checkpoint; anything else must hold a ``config.json``."""
    path = Path(path)
    if (path / "best" / "config.json").is_file():
        return path / "best"
    if not (path / "config.json").is_file():
        raise EvaluationError(f"{path}: no config.json (expected a model folder or a training run with best/)")
    return path


def inspect_folder(path: Path, *, quantization: str | None = None, max_length: int | None = None) -> ModelFolder:
    """Runtime, labels, max length and thresholds of a TF or ONNX model folder (nothing is loaded)."""
    from bot.core.backends.onnx import find_graph

    folder = resolve_model_dir(path)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label") or {}
    labels = tuple(id2label[key] for key in sorted(id2label, key=int))
    if not labels:
        raise EvaluationError(f"{folder}/config.json has no id2label")
    graph = find_graph(folder, quantization)
    if graph is not None:
        runtime, quantization = "onnx", "int8" if graph.name.endswith(".int8.onnx") else "fp32"
    elif quantization:
        raise EvaluationError(f"{folder}: no {quantization} ONNX graph (model.onnx / model.int8.onnx)")
    elif (folder / "tf_model.h5").is_file() or (folder / "model.safetensors").is_file():
        runtime = "tensorflow"
    else:
        raise EvaluationError(f"{folder}: no model.onnx, model.int8.onnx, tf_model.h5 or model.safetensors")
    run_dir = folder.parent if (folder.parent / "train_config.yaml").is_file() else None
    saved = config.get(MODERATION_KEY) or {}
    if max_length is None:
        max_length = saved.get("max_length") or _run_max_length(run_dir)
    if max_length is None:
        max_length = min(config.get("max_position_embeddings") or FALLBACK_MAX_LENGTH, FALLBACK_MAX_LENGTH)
    if saved.get("thresholds"):
        thresholds, source = dict(saved["thresholds"]), "config.json (chosen at export)"
    elif (folder / VAL_PREDICTIONS).is_file():
        probabilities, label_rows = load_val_predictions(folder)
        thresholds = threshold_map(choose_thresholds(probabilities, label_rows, labels))
        source = f"max F1 on the validation split ({VAL_PREDICTIONS})"
    else:
        thresholds, source = dict.fromkeys(labels, 0.5), "default 0.5"
    return ModelFolder(folder, runtime, labels, int(max_length), thresholds, source, quantization, run_dir, config)


def _run_max_length(run_dir: Path | None) -> int | None:
    if run_dir is None:
        return None
    import yaml

    recipe = yaml.safe_load((run_dir / "train_config.yaml").read_text(encoding="utf-8")) or {}
    return recipe.get("max_length")


def spec_name(folder: Path) -> str:
    """A registry-valid model name for a folder."""
    name = re.sub(r"[^a-z0-9._-]+", "-", folder.resolve().name.lower()).strip("-._")[:64]
    return name or "model"


def open_backend(model: ModelFolder):
    """Load the folder through the bot's backends (``ModelLoadError`` when it does not load)."""
    from bot.core.backends.base import load_backend
    from bot.core.registry import LocalSource, ModelSpec
    from bot.core.types import Task

    spec = ModelSpec(
        name=spec_name(model.path),
        task=Task.MULTI_LABEL,
        source=LocalSource(path=model.path.resolve()),
        runtime=model.runtime,
        max_length=model.max_length,
        thresholds=model.thresholds,
    )
    if model.runtime != "onnx":
        return load_backend(spec)
    from bot.core.backends.onnx import load  # direct, to choose the graph when a folder has both
    from bot.core.errors import ModelLoadError

    try:
        return load(spec, quantization=model.quantization)
    except ModelLoadError:
        raise
    except Exception as error:  # onnxruntime's errors are untyped
        raise ModelLoadError(spec.name, f"{type(error).__name__}: {error}") from error


def predict_texts(backend, texts: Sequence[str], *, batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """Probabilities of ``texts`` in their order; batched over texts sorted by length, with a progress bar."""
    from tqdm.auto import tqdm

    order = np.argsort([len(text) for text in texts], kind="stable")
    probabilities = np.zeros((len(texts), len(backend.labels)), dtype=np.float32)
    with tqdm(total=len(texts), unit="text", disable=not progress, desc="scoring") as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            probabilities[batch] = backend.predict([texts[i] for i in batch]).probabilities
            bar.update(len(batch))
    return probabilities


def label_metrics(
    truth: np.ndarray, scores: np.ndarray, threshold: float, weights: np.ndarray | None
) -> dict[str, float | int | None]:
    """ROC-AUC, weighted ROC-AUC, PR-AUC and precision / recall / F1 at ``threshold`` of one label."""
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

    both = 0 < truth.sum() < len(truth)
    predicted = scores >= threshold
    precision, recall, f1, _ = precision_recall_fscore_support(truth, predicted, average="binary", zero_division=0.0)
    row: dict[str, float | int | None] = {
        "positives": int(truth.sum()),
        "roc_auc": float(roc_auc_score(truth, scores)) if both else None,
        "pr_auc": float(average_precision_score(truth, scores)) if both else None,
        "threshold": float(threshold),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "flagged": int(predicted.sum()),
    }
    if weights is not None:
        row["roc_auc_weighted"] = float(roc_auc_score(truth, scores, sample_weight=weights)) if both else None
        weighted = precision_recall_fscore_support(
            truth, predicted, average="binary", sample_weight=weights, zero_division=0.0
        )
        row["precision_weighted"] = float(weighted[0])
    return row


def compute_metrics(
    label_rows: np.ndarray,
    probabilities: np.ndarray,
    labels: Sequence[str],
    thresholds: dict[str, float],
    prevalence: float | None = FULL_DATA_PREVALENCE,
) -> dict:
    """Per-label metrics and their means; prevalence-weighted figures when ``prevalence`` is set and toxic exists."""
    weights = None
    if prevalence is not None and "toxic" in labels:
        weights = prevalence_weights(label_rows, labels, prevalence)
    per_label = {}
    for i, name in enumerate(labels):
        known = ~np.isnan(label_rows[:, i])  # a source that does not know this label: not counted
        cut = thresholds.get(name, 0.5)
        cut = cut["flag"] if isinstance(cut, dict) else cut  # two operating points: F1 is the review (flag) cut's
        row_weights = None if weights is None else weights[known]
        per_label[name] = label_metrics(label_rows[known, i], probabilities[known, i], cut, row_weights)

    def mean(key: str) -> float | None:
        values = [row[key] for row in per_label.values() if row.get(key) is not None]
        return float(np.mean(values)) if values else None

    keys = ["roc_auc", "roc_auc_weighted", "pr_auc", "precision", "recall", "f1"]
    return {
        "rows": len(label_rows),
        "mean": {key: mean(key) for key in keys if any(key in row for row in per_label.values())},
        "per_label": per_label,
        "non_toxic_weight": float(weights.max()) if weights is not None else None,
    }


def evaluate(
    model_dir: Path,
    csv_path: Path,
    out_dir: Path | None = None,
    *,
    prevalence: float | None = FULL_DATA_PREVALENCE,
    quantization: str | None = None,
    max_length: int | None = None,
    batch_size: int = 64,
    text_column: str = "comment_text",
    progress: bool = True,
) -> dict:
    """Score ``csv_path`` with the model and write evaluation.json / .md, predictions.npz and the PNG plots."""
    from training import plots
    from training.data import label_matrix, load_jigsaw

    model = inspect_folder(model_dir, quantization=quantization, max_length=max_length)
    dataset = load_jigsaw(Path(csv_path), model.labels, text_column)
    texts = [text or "" for text in dataset[text_column]]
    label_rows = label_matrix(dataset, model.labels)
    out = Path(out_dir) if out_dir else default_out_dir(model, Path(csv_path))
    out.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    backend = open_backend(model)
    loaded = time.perf_counter()
    probabilities = predict_texts(backend, texts, batch_size=batch_size, progress=progress)
    scoring_s = time.perf_counter() - loaded
    np.savez_compressed(out / "predictions.npz", probabilities=probabilities, labels=label_rows)
    metrics = compute_metrics(label_rows, probabilities, model.labels, model.thresholds, prevalence)

    title = f"{model.path.name} ({model.runtime}{'/' + model.quantization if model.quantization else ''})"
    plot_files = [plots.roc_curves(label_rows, probabilities, model.labels, out / "roc_curves.png", title)]
    history = find_history(model)
    if history is not None and (curves := plots.training_curves(history, out / "training_curves.png", title)):
        plot_files.append(curves)
    report = {
        "model": str(model.path),
        "runtime": model.runtime,
        "quantization": model.quantization,
        "max_length": model.max_length,
        "data": str(csv_path),
        "weighted_prevalence": prevalence,
        "thresholds_source": model.thresholds_source,
        "load_seconds": round(loaded - started, 2),
        "scoring_seconds": round(scoring_s, 2),
        "texts_per_second": round(len(texts) / scoring_s, 1) if scoring_s > 0 else None,
        **metrics,
        "plots": [path.name for path in plot_files],
        "out": str(out),
    }
    (out / "evaluation.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out / "evaluation.md").write_text(render_markdown(report), encoding="utf-8")
    log.info("evaluation of %s on %s written to %s", model.path, csv_path, out)
    return report


def default_out_dir(model: ModelFolder, csv_path: Path) -> Path:
    """``runs/eval/<model>-<csv stem>`` beside the run when there is one, never inside a model folder."""
    tag = model.path.name if model.quantization is None else f"{model.path.name}-{model.quantization}"
    base = model.run_dir / "eval" if model.run_dir else Path("runs") / "eval"
    return base / f"{tag}-{csv_path.stem}"


def find_history(model: ModelFolder) -> Path | None:
    for folder in (model.path, model.run_dir):
        if folder is not None and (folder / "history.csv").is_file():
            return folder / "history.csv"
    return None


def render_markdown(report: dict) -> str:
    """The report as a Markdown page: headline figures, then one row per label."""

    def cell(value) -> str:
        return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)

    weighted = report.get("non_toxic_weight") is not None
    mean = report["mean"]
    lines = [
        f"# Evaluation of `{report['model']}`",
        "",
        f"- data: `{report['data']}` ({report['rows']} rows)",
        f"- runtime: {report['runtime']}" + (f" ({report['quantization']})" if report["quantization"] else ""),
        f"- max length: {report['max_length']} tokens; thresholds: {report['thresholds_source']}",
        f"- mean ROC-AUC: **{cell(mean.get('roc_auc'))}**",
    ]
    if weighted:
        lines.append(
            f"- mean ROC-AUC weighted to {report['weighted_prevalence']:.1%} toxic rows: "
            f"**{cell(mean.get('roc_auc_weighted'))}** (non-toxic row weight {report['non_toxic_weight']:.3f})"
        )
    lines += [f"- mean PR-AUC: {cell(mean.get('pr_auc'))}; mean F1 at the thresholds: {cell(mean.get('f1'))}", ""]
    columns = ["label", "positives", "ROC-AUC"] + (["ROC-AUC (weighted)"] if weighted else [])
    columns += ["PR-AUC", "threshold", "precision", "recall", "F1"] + (["precision (weighted)"] if weighted else [])
    keys = ["positives", "roc_auc"] + (["roc_auc_weighted"] if weighted else [])
    keys += ["pr_auc", "threshold", "precision", "recall", "f1"] + (["precision_weighted"] if weighted else [])
    lines += ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for name, row in report["per_label"].items():
        lines.append("| " + " | ".join([name, *(cell(row.get(key)) for key in keys)]) + " |")
    lines.append("")
    lines += [f"![{path}]({path})" for path in report["plots"]]
    return "\n".join(lines) + "\n"
