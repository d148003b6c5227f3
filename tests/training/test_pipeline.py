"""End to end on a tiny BERT: train two epochs -> evaluate (TF, ONNX fp32, int8) -> export -> the bot serves it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bot.core.classifier import Classifier
from bot.core.labels import TOXICITY_LABELS
from bot.core.model_folder import parse_thresholds
from bot.core.registry import load_registry
from tests.training.conftest import f1_at, write_jigsaw_csv
from training.__main__ import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Pipeline:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.csv = root / "rows.csv"
        self.run = root / "run"
        self.shipped = root / "models" / "tiny-export"
        self.models_yaml = root / "models.yaml"

    def evaluation(self, name: str) -> dict:
        return json.loads((self.root / name / "evaluation.json").read_text())

    @property
    def export_report(self) -> dict:
        return json.loads((self.run / "export" / "export_report.json").read_text())


@pytest.fixture(scope="module")
def pipeline(tiny_models, tmp_path_factory) -> Pipeline:
    """Every command once, through the CLI, on 240 generated rows (24 for validation)."""
    p = Pipeline(tmp_path_factory.mktemp("pipeline"))
    write_jigsaw_csv(p.csv, rows=240)
    p.models_yaml.write_text(tiny_models.models_yaml.read_text())
    for folder in (tiny_models.multi_label_dir, tiny_models.single_label_dir):  # named relative to the yaml
        (p.root / folder.name).symlink_to(folder)
    overrides = [f"base_model={tiny_models.multi_label_dir}", "base_model_sha256=null", "name=tiny-smoke"]
    overrides += ["max_length=32", "batch_size=16", "epochs=2", "warmup_steps=0", "bucket_chunk=64"]
    steps = [
        ["train", "--config", "minilm", "--data", str(p.csv), f"output_dir={p.run}", *overrides],
        ["evaluate", str(p.run), "--data", str(p.csv), "--out", str(p.root / "eval-tf"), "--no-progress"],
        ["export", str(p.run), "--out", str(p.shipped), "--int8", "--data", str(p.csv), "--no-progress",
         "--models-yaml", str(p.models_yaml), "--write-entry"],
        ["evaluate", str(p.shipped), "--data", str(p.csv), "--out", str(p.root / "eval-int8"), "--no-progress"],
        ["evaluate", str(p.run / "export" / "onnx"), "--quantization", "fp32", "--data", str(p.csv),
         "--out", str(p.root / "eval-fp32"), "--no-progress"],
    ]  # fmt: skip
    for argv in steps:
        assert main(argv) == 0, argv
    return p


def test_training_keeps_the_best_epoch_with_its_validation_predictions(pipeline):
    best = pipeline.run / "best"
    assert {"config.json", "tf_model.h5", "tokenizer.json", "val_predictions.npz", "metrics.json"} <= {
        path.name for path in best.iterdir()
    }
    saved = np.load(best / "val_predictions.npz")
    stats = json.loads((pipeline.run / "data_stats.json").read_text())
    assert saved["probabilities"].shape == saved["labels"].shape == (stats["validation_rows"], 6)
    assert (saved["labels"].sum(axis=0) > 0).all()  # every label, the rare ones too, is in the validation split
    assert stats["padding_share_bucketed"] < stats["padding_share_pad_to_512"]
    with open(pipeline.run / "history.csv", newline="") as handle:
        history = list(csv.DictReader(handle))
    assert [row["epoch"] for row in history] == ["0", "1"] and "val_mean_auc" in history[0]
    assert all(float(row["loss"]) > 0 and float(row["examples_per_s"]) > 0 for row in history)  # epoch 2 got batches


def test_evaluate_reports_every_label_with_plots(pipeline):
    report = pipeline.evaluation("eval-tf")
    assert report["runtime"] == "tensorflow" and report["rows"] == 240
    assert list(report["per_label"]) == list(TOXICITY_LABELS)
    # the generated toxic templates are easy: a label/score misalignment would sink these far below
    assert report["mean"]["roc_auc"] > 0.9 and report["mean"]["roc_auc_weighted"] > 0.9
    with open(pipeline.csv, newline="") as handle:
        toxic = sum(int(row["toxic"]) for row in csv.DictReader(handle))
    assert report["non_toxic_weight"] == pytest.approx(toxic * 0.904 / (0.096 * (240 - toxic)))
    assert report["thresholds_source"].startswith("max F1 on the validation split")
    folder = pipeline.root / "eval-tf"
    for name in ("roc_curves.png", "training_curves.png"):
        assert (folder / name).read_bytes()[:8] == PNG_MAGIC
    assert "| identity_hate |" in (folder / "evaluation.md").read_text()


def test_export_ships_only_what_the_bot_loads(pipeline):
    files = sorted(path.name for path in pipeline.shipped.iterdir())
    assert files == ["config.json", "model.int8.onnx", "tokenizer.json"]
    assert sum(path.stat().st_size for path in pipeline.shipped.iterdir()) < 30e6
    assert (pipeline.run / "export" / "tf" / "tf_model.h5").is_file()  # the TF weights stay with the run
    report = pipeline.export_report
    assert report["max_abs_logit_diff_vs_tf"]["fp32"] < 1e-4
    assert report["max_abs_logit_change_with_batch_mates"]["int8"] <= 1e-4  # static int8: batch mates change nothing
    assert report["calibration"]["rows"] > 0
    validation = report["validation"]
    assert validation["rows"] == json.loads((pipeline.run / "data_stats.json").read_text())["validation_rows"]
    assert validation["int8_change"]["roc_auc"] == pytest.approx(
        validation["onnx_int8"]["mean"]["roc_auc"] - validation["onnx_fp32"]["mean"]["roc_auc"]
    )


def test_flag_cuts_are_max_f1_and_act_cuts_never_below_them(pipeline):
    thresholds = json.loads((pipeline.shipped / "config.json").read_text())["moderation"]["thresholds"]
    saved = np.load(pipeline.run / "best" / "val_predictions.npz")
    for column, label in enumerate(TOXICITY_LABELS):
        truth, scores = saved["labels"][:, column], saved["probabilities"][:, column]
        best = f1_at(truth, scores, np.unique(scores)).max()
        assert f1_at(truth, scores, [thresholds[label]["flag"]])[0] == pytest.approx(best), label
        assert thresholds[label]["act"] >= thresholds[label]["flag"], label


def test_the_same_evaluate_command_scores_onnx_fp32_and_int8(pipeline):
    tf, fp32, int8 = (pipeline.evaluation(name) for name in ("eval-tf", "eval-fp32", "eval-int8"))
    assert (fp32["runtime"], fp32["quantization"], int8["quantization"]) == ("onnx", "fp32", "int8")
    assert int8["thresholds_source"].startswith("config.json")
    assert fp32["mean"]["roc_auc"] == pytest.approx(tf["mean"]["roc_auc"], abs=1e-3)  # same model, same truncation
    assert int8["mean"]["roc_auc"] > 0.85  # hidden-32 random weights are a worst case for 8 bits


async def test_the_exported_folder_serves_through_the_registry(pipeline):
    registry = load_registry(pipeline.models_yaml)
    spec = registry.get("tiny-export")
    config = json.loads((pipeline.shipped / "config.json").read_text())
    assert spec.runtime == "onnx" and spec.source.path == pipeline.shipped.resolve()
    folder = parse_thresholds(config["moderation"]["thresholds"], "config.json")
    assert set(spec.thresholds) == set(folder)
    for label, points in spec.thresholds.items():
        assert (points.flag, points.act) == pytest.approx((folder[label].flag, folder[label].act), abs=1e-4)
    assert spec.max_length == 32
    classifier = Classifier(registry)
    try:
        insult, friendly = await classifier.classify(
            ["you are a stupid idiot", "had a wonderful weekend at the park"], model="tiny-export"
        )
    finally:
        await classifier.aclose()
    assert insult.labels == friendly.labels == TOXICITY_LABELS
    assert insult.score("insult") > friendly.score("insult") + 0.3
    assert insult.score("toxic") > friendly.score("toxic") + 0.3
