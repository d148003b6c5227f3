"""A cheap probe for choosing the mix of sources: TF-IDF + logistic regression per label, masked, on the split.

``python -m training.probe --data JIGSAW_TRAIN EXTRA_DIR`` prints validation ROC-AUC per source and label for each
source weighting, so the transformer's mix is chosen on validation figures, not by taste. Validation rows only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bot.core.labels import TOXICITY_LABELS
from training.sources import load_corpus, source_weights, split_corpus


def _fit_predict(train, val, weights):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectoriser = TfidfVectorizer(min_df=2, max_features=200_000, ngram_range=(1, 2), sublinear_tf=True)
    x_train = vectoriser.fit_transform(train.texts)
    x_val = vectoriser.transform(val.texts)
    scores = np.full(val.labels.shape, np.nan, dtype=np.float32)
    for j in range(train.labels.shape[1]):
        known = ~np.isnan(train.labels[:, j])
        model = LogisticRegression(C=4.0, max_iter=1000, class_weight="balanced")
        model.fit(x_train[known], train.labels[known, j], sample_weight=weights[known])
        scores[:, j] = model.predict_proba(x_val)[:, 1]
    return scores


def masked_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    known = ~np.isnan(labels)
    y = labels[known]
    return float(roc_auc_score(y, scores[known])) if 0 < y.sum() < len(y) else float("nan")


def per_source_report(val, scores, labels) -> dict[str, dict[str, float]]:
    report = {}
    for source in ["all", *sorted(set(val.sources.tolist()))]:
        rows = np.ones(len(val.sources), bool) if source == "all" else val.sources == source
        report[source] = {
            label: round(masked_auc(val.labels[rows, j], scores[rows, j]), 4) for j, label in enumerate(labels)
        }
        values = [v for v in report[source].values() if not np.isnan(v)]
        report[source]["mean"] = round(float(np.mean(values)), 4) if values else float("nan")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, nargs="+", required=True)
    parser.add_argument("--schemes", nargs="+", default=["natural", "temperature:0.5", "temperature:0.0"])
    parser.add_argument("--out", type=Path, default=Path("runs/probe/source_weighting.json"))
    args = parser.parse_args()
    corpus = load_corpus(args.data, TOXICITY_LABELS)
    train_idx, val_idx = split_corpus(corpus, 0.1, 42)
    train, val = corpus.subset(train_idx), corpus.subset(val_idx)
    results = {}
    for scheme in args.schemes:
        name, _, temperature = scheme.partition(":")
        weights = source_weights(train.sources, name, float(temperature or 0.5))
        results[scheme] = per_source_report(val, _fit_predict(train, val, weights), TOXICITY_LABELS)
        print(scheme, json.dumps({s: r["mean"] for s, r in results[scheme].items()}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
