"""`python -m training export RUN_OR_MODEL_DIR --out models/NAME`: the folder the bot serves, checked, with its entry.

Work files go to ``<run>/export`` (``tf/``: the ``save_pretrained`` copy with the thresholds in its config; ``onnx/``:
fp32 and int8 graphs; ``export_report.json``). The shipped folder holds only what the bot loads: one ONNX graph,
``tokenizer.json`` and ``config.json`` (labels, and under ``moderation`` the thresholds and max length).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bot.core.backends.onnx_export import export_folder, verify
from bot.core.model_folder import CONFIG_FILE, FP32_FILE, INT8_FILE, TOKENIZER_FILE, write_moderation
from training.evaluate import (
    compute_metrics,
    inspect_folder,
    open_backend,
    predict_texts,
    resolve_model_dir,
)
from training.models_entry import build_entry, merge_entry, relative_source, render_entry, write_entry
from training.thresholds import (
    ACT_PRECISION,
    VAL_PREDICTIONS,
    choose_operating_points,
    load_val_predictions,
    operating_point_map,
)

log = logging.getLogger(__name__)
# Files an export writes into the shipped folder, the only ones it may replace there.
REPLACEABLE = {FP32_FILE, INT8_FILE, TOKENIZER_FILE, CONFIG_FILE, "tokenizer_config.json", "special_tokens_map.json"}
CALIBRATION_ROWS = 400  # training rows the int8 graph's activation ranges are measured on
FP32_TOLERANCE = 1e-3  # max abs logit difference ONNX fp32 vs TF; a correct conversion is near 1e-6
CHECK_TEXTS = (  # for the TF / ONNX comparison when no CSV is given
    "you are so stupid",
    "had a wonderful weekend at the park, thanks for asking",
    "I will find you and kill you",
    "",
    "what a lovely picture of the mountains! " * 20,
)


class ExportError(ValueError):
    """The export cannot be made or failed a check; the message says which."""


def export(
    source: Path,
    out_dir: Path,
    *,
    data: Sequence[Path] | None = None,
    int8: bool = False,
    work_dir: Path | None = None,
    models_yaml: Path = Path("models.yaml"),
    write: bool = False,
    name: str | None = None,
    display_name: str | None = None,
    act_precision: float = ACT_PRECISION,
    thresholds_from: str = "training",
    check_rows: int = 64,
    max_mb: float = 30.0,
    text_column: str = "comment_text",
    progress: bool = True,
) -> dict:
    """Export, check and ship a trained TF model; returns the report (also written to ``<work>/export_report.json``)."""
    from bot.core.registry import NAME_PATTERN

    model_dir = resolve_model_dir(source)
    model = inspect_folder(model_dir)
    if model.runtime != "tensorflow":
        raise ExportError(f"{model_dir}: export takes a TensorFlow save_pretrained folder or a training run")
    out_dir = Path(out_dir)
    name = name or out_dir.name
    if not NAME_PATTERN.match(name):
        raise ExportError(f"model name {name!r}: use lowercase letters, digits, '.', '_' or '-' (pass --name)")
    _check_replaceable(out_dir, model_dir)
    recipe = _recipe(model.run_dir)
    work = Path(work_dir) if work_dir else (model.run_dir or model_dir.parent) / "export"
    if work.resolve() == out_dir.resolve():
        raise ExportError("--out and the work folder must differ (the work folder keeps the TF weights)")

    if thresholds_from == "shipped" and data is None:
        raise ExportError("--thresholds-from shipped needs --data (the training CSV) to score the validation split")
    if int8 and data is None:
        raise ExportError("--int8 needs --data: the int8 graph is calibrated on rows of the training split")
    tf_dir, onnx_dir = work / "tf", work / "onnx"
    save_tf_copy(model_dir, tf_dir)
    serving = {
        "max_length": model.max_length,
        "truncation": recipe.get("truncation", "head"),
        "head_share": recipe.get("head_share", 0.75),
    }
    write_moderation(tf_dir / CONFIG_FILE, serving)  # calibration tokenises as the bot will serve
    calibration = _calibration_texts(data, model.labels, recipe, text_column) if data is not None else None
    graphs = export_folder(tf_dir, onnx_dir, fp32=True, int8=True, calibration_texts=calibration)
    shipped_kind = "int8" if int8 else "fp32"

    check_texts, scored = list(CHECK_TEXTS), None
    if data is not None:
        texts, label_rows, split = _validation_rows(data, model.labels, recipe, model_dir, text_column)
        rng = np.random.default_rng(0)
        check_texts = [texts[i] for i in rng.choice(len(texts), size=min(check_rows, len(texts)), replace=False)]
        scored = {
            kind: predict_texts(
                open_backend(inspect_folder(onnx_dir, quantization=kind, max_length=model.max_length)),
                texts,
                progress=progress,
            )
            for kind in ("fp32", "int8")
        }
    if thresholds_from == "shipped":
        choices, rule = _choose(scored[shipped_kind], label_rows, model.labels, act_precision)
        rule += f" ({shipped_kind} ONNX scores)"
    else:
        choices, rule = _thresholds(model_dir, model.labels, act_precision)
    points = operating_point_map(choices) if choices else _both(model.thresholds)
    thresholds = {label: point["flag"] for label, point in points.items()}  # the review cut scores F1 below
    best = _best_metrics(model_dir)
    moderation = {
        "thresholds": points,
        "languages": list(recipe.get("languages") or ["en"]),
        "version": recipe.get("version"),
        **serving,  # served the way it was trained: both backends cut long texts as training did
        "threshold_rule": rule,
        "recipe": recipe.get("name"),
        "best_epoch": best.get("epoch"),
        "validation_mean_roc_auc": best.get("val_mean_auc"),
    }
    for folder in (tf_dir, onnx_dir):
        write_moderation(folder / CONFIG_FILE, moderation)
    validation = None
    if scored is not None:
        validation = {
            "split": split,
            "tf_mean_roc_auc_in_training": best.get("val_mean_auc"),
            **_compare_graphs(scored, label_rows, model.labels, thresholds),
        }
    diffs = {kind: verify(tf_dir, path, check_texts, max_length=model.max_length) for kind, path in graphs.items()}
    batch_dependence = _batch_dependence(onnx_dir, graphs, check_texts, model.max_length)
    if diffs["fp32"] > FP32_TOLERANCE:
        raise ExportError(f"ONNX fp32 logits differ from TF by {diffs['fp32']:.2e} (> {FP32_TOLERANCE}): not shipped")

    shipped_graph = INT8_FILE if int8 else FP32_FILE
    ship(onnx_dir, out_dir, shipped_graph)
    shipped_bytes = sum(path.stat().st_size for path in out_dir.iterdir())
    smoke = open_backend(inspect_folder(out_dir)).predict(list(CHECK_TEXTS[:3])).probabilities
    if shipped_bytes > max_mb * 1e6:
        log.warning("%s is %.1f MB, over the %.0f MB limit for a bundled model", out_dir, shipped_bytes / 1e6, max_mb)

    entry = merge_entry(
        models_yaml,
        name,
        build_entry(
            display_name=display_name or recipe.get("name") or name,
            source_path=relative_source(out_dir, models_yaml),
            max_length=model.max_length,
            thresholds=points,
            version=recipe.get("version"),
            languages=recipe.get("languages"),
        ),
    )
    action = write_entry(models_yaml, name, entry) if write else None
    report = {
        "source": str(model_dir),
        "shipped": {
            "folder": str(out_dir),
            "graph": shipped_graph,
            "files": sorted(path.name for path in out_dir.iterdir()),
            "megabytes": round(shipped_bytes / 1e6, 2),
            "size_ok": shipped_bytes <= max_mb * 1e6,
            "smoke_probabilities": smoke.round(4).tolist(),
        },
        "work": {"tf": str(tf_dir), "onnx": str(onnx_dir)},
        "graph_megabytes": {kind: round(path.stat().st_size / 1e6, 2) for kind, path in graphs.items()},
        "max_abs_logit_diff_vs_tf": {kind: float(value) for kind, value in diffs.items()},
        "max_abs_logit_change_with_batch_mates": batch_dependence,
        "calibration": {"rows": len(calibration), "from": f"training split of {data}"} if calibration else None,
        "check_texts": len(check_texts),
        "thresholds": {k: {"flag": asdict(v.flag), "act": asdict(v.act)} for k, v in choices.items()}
        if choices
        else points,
        "threshold_rule": rule,
        "validation": validation,
        "models_yaml": {"file": str(models_yaml), "name": name, "written": action, "entry": entry},
        "entry_yaml": render_entry(name, entry),
        "report": str(work / "export_report.json"),
    }
    (work / "export_report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def save_tf_copy(model_dir: Path, tf_dir: Path) -> None:
    """``save_pretrained`` copy of the model and tokenizer (config with the labels)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from transformers import AutoTokenizer, TFAutoModelForSequenceClassification

    model = TFAutoModelForSequenceClassification.from_pretrained(str(model_dir))
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), use_fast=True)
    model.save_pretrained(str(tf_dir))
    tokenizer.save_pretrained(str(tf_dir))


def ship(onnx_dir: Path, out_dir: Path, graph: str) -> None:
    """Put ``graph``, tokenizer.json and config.json into ``out_dir`` (replaced as a whole, via a staging folder)."""
    staging = out_dir.with_name(f".{out_dir.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for file in (graph, TOKENIZER_FILE, CONFIG_FILE):
        shutil.copyfile(onnx_dir / file, staging / file)
    if out_dir.exists():
        shutil.rmtree(out_dir)  # _check_replaceable made sure it holds only files an export writes
    os.replace(staging, out_dir)


def _check_replaceable(out_dir: Path, model_dir: Path) -> None:
    if out_dir.resolve() == model_dir.resolve():
        raise ExportError(f"--out {out_dir} is the model being exported")
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ExportError(f"--out {out_dir} is a file")
        foreign = sorted(path.name for path in out_dir.iterdir() if path.name not in REPLACEABLE)
        if foreign:
            raise ExportError(
                f"--out {out_dir} holds files an export does not write ({', '.join(foreign)}): not replaced"
            )


def _both(thresholds: dict) -> dict[str, dict[str, float]]:
    """A folder's own thresholds in the two-point form (an old single number means both)."""
    return {k: dict(v) if isinstance(v, dict) else {"flag": v, "act": v} for k, v in thresholds.items()}


def _recipe(run_dir: Path | None) -> dict:
    if run_dir is None:
        return {}
    import yaml

    return yaml.safe_load((run_dir / "train_config.yaml").read_text(encoding="utf-8")) or {}


def _best_metrics(model_dir: Path) -> dict:
    path = model_dir / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def _thresholds(model_dir: Path, labels: Sequence[str], precision: float):
    """Flag and act cuts on the saved validation predictions, or none."""
    if not (model_dir / VAL_PREDICTIONS).is_file():
        log.warning("%s has no %s: thresholds stay at 0.5", model_dir, VAL_PREDICTIONS)
        return None, f"default 0.5 (no {VAL_PREDICTIONS})"
    probabilities, label_rows = load_val_predictions(model_dir)
    if probabilities.shape[1] != len(labels):
        raise ExportError(f"{model_dir}/{VAL_PREDICTIONS}: {probabilities.shape[1]} columns for {len(labels)} labels")
    return _choose(probabilities, label_rows, labels, precision)


def _choose(probabilities: np.ndarray, label_rows: np.ndarray, labels: Sequence[str], precision: float):
    """Flag: max F1 on the validation split; act: the lowest cut keeping precision >= target at real prevalence."""
    target = precision
    rule = (
        f"flag: max F1 on the validation split (known cells of every source); act: lowest cut from which at least "
        f"{target:.0%} of the messages acted on are abusive (any label), harmless rows re-weighted to 9.6% abusive"
    )
    return choose_operating_points(probabilities, label_rows, labels, precision_target=target), rule


def _split(data: Sequence[Path], labels, recipe: dict, text_column: str):
    """Texts, label rows (NaN = unknown), the run's (train, validation) row indices, and the data's name: the recipe's
    seeded split of every source, or every row in both for a model without a run. Validation scoring and int8
    calibration both take it from here."""
    from training.sources import load_corpus, split_corpus

    paths = [Path(p) for p in ([data] if isinstance(data, str | Path) else data)]
    corpus = load_corpus(paths, labels, text_column)
    named = " + ".join(map(str, paths))
    if not recipe:
        every = np.arange(len(corpus.texts))
        return corpus.texts, corpus.labels, every, every, named
    train_idx, val_idx = split_corpus(corpus, recipe.get("val_fraction", 0.1), recipe.get("seed", 42))
    return corpus.texts, corpus.labels, train_idx, val_idx, named


def _validation_rows(data: Sequence[Path], labels, recipe: dict, model_dir: Path, text_column: str):
    """The run's validation rows of ``data`` (its recipe's seeded split per source); all rows without a run."""
    texts, label_rows, _, val_idx, named = _split(data, labels, recipe, text_column)
    if not recipe:
        return texts, label_rows, f"all {len(texts)} rows of {named} (no training run to split)"
    if (model_dir / VAL_PREDICTIONS).is_file():
        _, saved = load_val_predictions(model_dir)
        same = len(saved) == len(val_idx) and np.array_equal(
            np.nansum(saved, axis=0), np.nansum(label_rows[val_idx], axis=0)
        )
        if not same:
            raise ExportError(f"{named} is not the data this run was trained on: its validation split differs")
    seed, fraction = recipe.get("seed"), recipe.get("val_fraction")
    split = f"{len(val_idx)} validation rows of {named} (seed {seed}, {fraction} of every source)"
    return [texts[i] for i in val_idx], label_rows[val_idx], split


def _calibration_texts(
    data: Sequence[Path], labels, recipe: dict, text_column: str, count: int = CALIBRATION_ROWS
) -> list[str]:
    """``count`` random rows of the run's training split (never validation rows) to calibrate int8 on."""
    texts, _, train_idx, _, _ = _split(data, labels, recipe, text_column)
    chosen = np.random.default_rng(0).choice(train_idx, size=min(count, len(train_idx)), replace=False)
    return [texts[int(i)] for i in chosen]


def _batch_dependence(onnx_dir: Path, graphs: dict[str, Path], texts: Sequence[str], max_length: int) -> dict:
    """Largest logit change of a check text scored alone vs with random batch mates, per graph (0: independent)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from bot.core.backends.base import TextEncoder
    from bot.core.backends.onnx_quantize import batch_dependence
    from bot.core.model_folder import read_folder_config

    config = read_folder_config(onnx_dir)
    encoder = TextEncoder(Tokenizer.from_file(str(onnx_dir / TOKENIZER_FILE)), max_length=max_length, folder=config)
    rows, _ = encoder.encode(list(texts))
    return {
        kind: batch_dependence(ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]), rows, trials=20)
        for kind, path in graphs.items()
    }


def _compare_graphs(scored: dict[str, np.ndarray], label_rows: np.ndarray, labels, thresholds) -> dict:
    """ROC-AUC and F1 at the thresholds of the fp32 and int8 graphs on the same validation rows."""
    results = {}
    for kind, probabilities in scored.items():
        metrics = compute_metrics(label_rows, probabilities, labels, thresholds)
        results[kind] = {
            "mean": metrics["mean"],
            "roc_auc": {label: row["roc_auc"] for label, row in metrics["per_label"].items()},
            "f1": {label: row["f1"] for label, row in metrics["per_label"].items()},
        }
    fp32, int8 = results["fp32"]["mean"], results["int8"]["mean"]
    change = {key: int8[key] - fp32[key] for key in ("roc_auc", "roc_auc_weighted", "f1") if fp32.get(key) is not None}
    return {"rows": len(label_rows), "onnx_fp32": results["fp32"], "onnx_int8": results["int8"], "int8_change": change}
