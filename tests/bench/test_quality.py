"""bench/quality.py end to end on the tiny model and a small data folder in the shared folder's formats.

What it guards: every set is read in its real format, the decisions are the service's (the folder's thresholds decide
what is flagged and acted on), the baseline is served with its own thresholds, the cache gives the same answers,
and the Targets table covers the issue's rows. No figure of a real model is asserted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench import quality
from bench.quality_sets import MHC_LANGUAGES, MHC_PER_LANGUAGE, SET_NAMES
from bot.core.backends.onnx_export import export_folder

LABELS = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
ABUSIVE = ["you are a stupid idiot", "i will kill you", "shut up you moron", "you people are disgusting"]
HARMLESS = ["had a lovely day at the park", "thanks for the help", "see you tomorrow", "great game everyone"]


def _write_data(root: Path) -> None:
    texts = ABUSIVE + HARMLESS
    harmful = [1] * len(ABUSIVE) + [0] * len(HARMLESS)
    (root / "jigsaw").mkdir(parents=True)
    jigsaw = pd.DataFrame({"id": range(len(texts)), "comment_text": texts})
    for label in LABELS:
        jigsaw[label] = harmful if label in ("toxic", "insult") else 0
    jigsaw["source"] = "test"
    jigsaw.to_csv(root / "jigsaw" / "eval.csv", index=False)
    davidson = root / "tweets" / "davidson2017_hate-speech-and-offensive-language"
    davidson.mkdir(parents=True)
    pd.DataFrame({"class": [1 if h else 2 for h in harmful], "tweet": texts}).to_csv(davidson / "labeled_data.csv")
    for task in ("offensive", "hate"):
        folder = root / "tweets" / f"tweeteval_{task}"
        folder.mkdir(parents=True)
        (folder / "test_text.txt").write_text("".join(f"{text}\n" for text in texts), encoding="utf-8")
        (folder / "test_labels.txt").write_text("".join(f"{label}\n" for label in harmful), encoding="utf-8")
    (root / "hatecheck" / "multilingual").mkdir(parents=True)
    pd.DataFrame(
        {
            "functionality": ["derog_h"] * len(ABUSIVE) + ["ident_pos_nh"] * len(HARMLESS),
            "case_id": range(len(texts)),
            "test_case": [f"{text} " for text in texts],  # the real file has trailing spaces
            "label_gold": ["hateful" if h else "non-hateful" for h in harmful],
        }
    ).to_csv(root / "hatecheck" / "test_suite_cases.csv")
    for language in MHC_LANGUAGES:
        rows = [f"{language} case number {i} es un mensaje amable" for i in range(MHC_PER_LANGUAGE + 20)]
        pd.DataFrame(
            {"test_case": [*rows, "odio a todos"], "label_gold": [*(["non-hateful"] * len(rows)), "hateful"]}
        ).to_csv(root / "hatecheck" / "multilingual" / f"hatecheck_cases_final_{language}.csv", index=False)
    (root / "sst2").mkdir()
    sst2 = "sentence\tlabel\n" + "".join(f"{text} \t1\n" for text in HARMLESS)
    (root / "sst2" / "dev.tsv").write_text(sst2, encoding="utf-8")


def _with_thresholds(source: Path, target: Path, thresholds: dict) -> Path:
    shutil.copytree(source, target)
    config = json.loads((target / "config.json").read_text())
    config["moderation"] = {**config.get("moderation", {}), "thresholds": thresholds, "max_length": 64}
    (target / "config.json").write_text(json.dumps(config))
    return target


@pytest.fixture(scope="module")
def onnx_folder(tiny_models, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bench-onnx") / "tiny"
    export_folder(tiny_models.multi_label_dir, folder)
    return folder


def test_the_bench_reports_the_services_decisions_for_every_set(tiny_models, onnx_folder, tmp_path):
    data = tmp_path / "data"
    _write_data(data)
    # acts on everything: insult acts by default and every score passes 0.0001
    acts = _with_thresholds(onnx_folder, tmp_path / "acts", {label: 0.0001 for label in LABELS})
    # flags nothing
    never = _with_thresholds(onnx_folder, tmp_path / "never", {label: 1.0 for label in LABELS})
    out = tmp_path / "out" / "quality.json"
    argv = ["--data-root", str(data), "--model", str(acts), "--baseline", str(never)]
    argv += ["--models-file", str(tiny_models.models_yaml), "--out", str(out), "--cache-dir", str(tmp_path / "cache")]

    assert quality.main(argv) == 0
    report = json.loads(out.read_text())
    model, baseline = report["results"]["model"], report["results"]["baseline"]
    assert set(model) == set(SET_NAMES)
    assert model["mhc_non_hateful"]["rows"] == len(MHC_LANGUAGES) * MHC_PER_LANGUAGE
    for name in SET_NAMES:
        assert model[name]["harmless_acted"] == 1.0 and model[name]["harmless_flagged"] == 0.0
        assert baseline[name]["harmless_acted"] == 0.0 and baseline[name]["harmless_flagged"] == 0.0
    assert model["hatecheck"]["accuracy"] == 0.5  # every case "hateful": right on the hateful half only
    assert baseline["hatecheck"]["per_functionality"] == {"derog_h": 0.0, "ident_pos_nh": 1.0}
    assert 0.0 <= model["jigsaw_eval"]["mean_roc_auc_weighted"] <= 1.0
    assert report["int8_minus_fp32_weighted_roc_auc"] is not None  # the tiny folder ships both graphs
    figures = [row["figure"] for row in report["targets"]]
    assert len(figures) == 11 and figures[0] == "SST-2 dev, acted on"
    sst2 = report["targets"][0]
    assert sst2["values"] == {"baseline": 0.0, "model": 1.0} and sst2["met"] is False
    assert (tmp_path / "out" / "quality.md").read_text().startswith("| figure | baseline | model | target | met |")

    cached = sorted(path.name for path in (tmp_path / "cache").iterdir())
    assert quality.main(argv) == 0  # from the cache: same files, same report
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == cached
    assert json.loads(out.read_text()) == report


def test_a_folder_without_config_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        quality.main(["--data-root", str(tmp_path), "--model", str(tmp_path)])
    assert "is not a model folder" in capsys.readouterr().err
