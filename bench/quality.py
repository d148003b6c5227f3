"""Quality of a served toxicity model, reproduced from the shipped files and the shared evaluation sets.

    python bench/quality.py --data-root ../shared/data                       # the default model of models.yaml
    python bench/quality.py --data-root ../shared/data \
        --variant tf=tensorflow:runs/toxic-minilm/best \
        --variant onnx-fp32=onnx:models/toxic-minilm:fp32 --variant onnx-int8=onnx:models/toxic-minilm:int8

Every variant is scored with the thresholds of the models.yaml entry (``--model``, the shipped ones). The sets:
- Jigsaw ``eval.csv``: per-label ROC-AUC, plain and prevalence-weighted (weights in jigsaw/SOURCE.md), and their means.
- Tweets (Davidson 2017, TweetEval offensive and hate test splits): score = the highest toxicity label; ROC-AUC, and
  precision/recall/F1 of "any label over its threshold" and of the labels that act by default.
- HateCheck: accuracy per functionality of "any label over its threshold" against the gold label.
All of them are evaluation-only: nothing here feeds training, thresholds or checkpoint choice.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.backends.base import load_backend
from bot.core.records import DEFAULT_ACTING_LABELS
from bot.core.registry import ModelSpec, load_registry
from training.thresholds import FULL_DATA_PREVALENCE, prevalence_weights


@dataclass(frozen=True)
class Variant:
    name: str
    runtime: str
    path: Path
    quantization: str | None


def parse_variant(text: str) -> Variant:
    name, _, rest = text.partition("=")
    runtime, _, tail = rest.partition(":")
    path, _, quantization = tail.partition(":")
    if not name or runtime not in ("onnx", "tensorflow") or not path:
        raise argparse.ArgumentTypeError(f"{text!r}: use NAME=onnx|tensorflow:PATH[:fp32|int8]")
    return Variant(name, runtime, Path(path), quantization or None)


def load_variant(variant: Variant, shipped: ModelSpec):
    fields = shipped.model_dump(exclude={"name", "runtime", "source"})
    spec = ModelSpec.model_validate(
        {**fields, "name": variant.name, "runtime": variant.runtime, "source": {"path": variant.path.resolve()}}
    )
    if variant.runtime == "onnx" and variant.quantization:
        from bot.core.backends.onnx import load

        return load(spec, quantization=variant.quantization)
    return load_backend(spec)


def score(backend, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Probabilities (n, labels), batched by length so padding stays small."""
    order = np.argsort([len(text) for text in texts], kind="stable")
    out = np.zeros((len(texts), len(backend.labels)), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        out[rows] = backend.predict([texts[i] for i in rows]).probabilities
    return out


def jigsaw_metrics(probabilities: np.ndarray, frame: pd.DataFrame, labels: Sequence[str]) -> dict:
    truth = frame[list(labels)].to_numpy()
    weights = prevalence_weights(truth, labels, FULL_DATA_PREVALENCE)
    plain = {label: roc_auc_score(truth[:, i], probabilities[:, i]) for i, label in enumerate(labels)}
    weighted = {
        label: roc_auc_score(truth[:, i], probabilities[:, i], sample_weight=weights) for i, label in enumerate(labels)
    }
    return {
        "rows": len(frame),
        "roc_auc": plain,
        "roc_auc_weighted": weighted,
        "mean_roc_auc": float(np.mean(list(plain.values()))),
        "mean_roc_auc_weighted": float(np.mean(list(weighted.values()))),
    }


def flags(probabilities: np.ndarray, labels: Sequence[str], thresholds: dict[str, float], only=None) -> np.ndarray:
    columns = [i for i, label in enumerate(labels) if only is None or label in only]
    limits = np.array([thresholds.get(labels[i], 0.5) for i in columns])
    return (probabilities[:, columns] >= limits).any(axis=1)


def binary_metrics(truth: np.ndarray, probabilities: np.ndarray, labels, thresholds) -> dict:
    top = probabilities.max(axis=1)
    result = {"rows": len(truth), "positives": int(truth.sum()), "roc_auc": roc_auc_score(truth, top)}
    result["pr_auc"] = average_precision_score(truth, top)
    for name, only in (("any_label", None), ("acting_labels", DEFAULT_ACTING_LABELS)):
        predicted = flags(probabilities, labels, thresholds, only)
        precision, recall, f1, _ = precision_recall_fscore_support(truth, predicted, average="binary", zero_division=0)
        result[name] = {"precision": precision, "recall": recall, "f1": f1, "flagged": int(predicted.sum())}
    return result


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


TWEET_SETS = ("davidson2017", "tweeteval_offensive", "tweeteval_hate")
SET_NAMES = ("jigsaw_eval", *TWEET_SETS, "hatecheck")


def load_sets(root: Path) -> dict[str, tuple[list[str], object]]:
    """name -> (texts, truth) for every evaluation set under ``root``."""
    sets: dict[str, tuple[list[str], object]] = {}
    jigsaw = pd.read_csv(root / "jigsaw" / "eval.csv")
    sets["jigsaw_eval"] = (jigsaw["comment_text"].fillna("").tolist(), jigsaw)
    davidson = pd.read_csv(root / "tweets" / "davidson2017_hate-speech-and-offensive-language" / "labeled_data.csv")
    sets["davidson2017"] = (davidson["tweet"].tolist(), (davidson["class"] != 2).to_numpy().astype(int))
    for task in ("offensive", "hate"):
        folder = root / "tweets" / f"tweeteval_{task}"
        texts, labels = read_lines(folder / "test_text.txt"), read_lines(folder / "test_labels.txt")
        sets[f"tweeteval_{task}"] = (texts, np.array([int(label) for label in labels]))
    cases = pd.read_csv(root / "hatecheck" / "test_suite_cases.csv")
    sets["hatecheck"] = (cases["test_case"].str.strip().tolist(), cases)
    return sets


def hatecheck_metrics(probabilities, cases: pd.DataFrame, labels, thresholds) -> dict:
    predicted = flags(probabilities, labels, thresholds)
    gold = (cases["label_gold"] == "hateful").to_numpy()
    correct = pd.Series(predicted == gold, index=cases.index)
    per_functionality = correct.groupby(cases["functionality"]).mean().sort_values()
    return {
        "accuracy": float(correct.mean()),
        "accuracy_hateful": float(correct[gold].mean()),
        "accuracy_non_hateful": float(correct[~gold].mean()),
        "per_functionality": {name: float(value) for name, value in per_functionality.items()},
    }


def evaluate(backend, sets, thresholds) -> dict:
    labels = backend.labels
    report: dict[str, object] = {}
    for name, (texts, truth) in sets.items():
        started = time.perf_counter()
        probabilities = score(backend, texts)
        if name == "jigsaw_eval":
            report[name] = jigsaw_metrics(probabilities, truth, labels)
        elif name == "hatecheck":
            report[name] = hatecheck_metrics(probabilities, truth, labels, thresholds)
        else:
            report[name] = binary_metrics(truth, probabilities, labels, thresholds)
        report[name]["seconds"] = round(time.perf_counter() - started, 1)
        print(f"  {name}: {len(texts)} texts in {report[name]['seconds']} s", file=sys.stderr)
    return report


def markdown(results: dict[str, dict], labels: Sequence[str]) -> str:
    names = list(results)
    lines = ["| eval.csv ROC-AUC | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for label in labels:
        cells = [f"{results[n]['jigsaw_eval']['roc_auc'][label]:.4f}" for n in names]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for key, title in (
        ("mean_roc_auc", "**mean (plain)**"),
        ("mean_roc_auc_weighted", "**mean (prevalence-weighted)**"),
    ):
        lines.append(f"| {title} | " + " | ".join(f"**{results[n]['jigsaw_eval'][key]:.4f}**" for n in names) + " |")
    tweet_sets = [name for name in TWEET_SETS if name in results[names[0]]]
    if tweet_sets:
        lines += ["", "| tweets | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for dataset in tweet_sets:
        for metric in ("roc_auc", "any_label", "acting_labels"):
            cells = []
            for n in names:
                value = results[n][dataset][metric]
                cells.append(
                    f"{value:.3f}" if metric == "roc_auc" else f"P {value['precision']:.2f} / R {value['recall']:.2f}"
                )
            lines.append(f"| {dataset} {metric} | " + " | ".join(cells) + " |")
    if "hatecheck" not in results[names[-1]]:
        return "\n".join(lines)
    first = results[names[-1]]["hatecheck"]
    lines += [
        "",
        f"HateCheck ({names[-1]}): accuracy {first['accuracy']:.3f} "
        f"(hateful {first['accuracy_hateful']:.3f}, non-hateful {first['accuracy_non_hateful']:.3f})",
        "",
        "| functionality | accuracy |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {value:.2f} |" for name, value in first["per_functionality"].items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="the shared data folder (../shared/data)")
    parser.add_argument("--models-file", type=Path, default=Path("models.yaml"))
    parser.add_argument("--model", help="models.yaml entry whose thresholds are used (default: the default model)")
    parser.add_argument("--variant", type=parse_variant, action="append", default=[], help="NAME=RUNTIME:PATH[:QUANT]")
    parser.add_argument("--out", type=Path, default=Path("bench/results/quality.json"))
    parser.add_argument("--sets", nargs="+", choices=SET_NAMES, default=list(SET_NAMES), help="sets to score")
    parser.add_argument("--limit", type=int, help="score only the first N texts of each set (a quick look)")
    args = parser.parse_args(argv)

    registry = load_registry(args.models_file)
    shipped = registry.get(args.model or registry.default)
    thresholds = {label: shipped.threshold(label) for label in shipped.thresholds} if shipped.thresholds else {}
    variants = args.variant or [Variant(shipped.name, shipped.runtime, Path(shipped.source.path), None)]
    sets = {name: value for name, value in load_sets(args.data_root).items() if name in args.sets}
    if args.limit:
        sets = {name: (texts[: args.limit], truth[: args.limit]) for name, (texts, truth) in sets.items()}
    results = {}
    for variant in variants:
        print(
            f"{variant.name}: loading {variant.path} ({variant.runtime} {variant.quantization or ''})", file=sys.stderr
        )
        backend = load_variant(variant, shipped)
        results[variant.name] = evaluate(backend, sets, thresholds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"model": shipped.name, "thresholds": thresholds, "results": results}, indent=2))
    table = markdown(results, backend.labels)
    print(table)
    args.out.with_suffix(".md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
