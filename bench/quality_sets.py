"""The evaluation sets of bench/quality.py, read from the shared data folder (formats: each folder's SOURCE.md).

Every set here is evaluation-only: nothing in the project trains, tunes thresholds or chooses anything on them.
``harmful`` is the gold "abusive" flag per text, or None for sets whose texts are all harmless (SST-2, the
multilingual HateCheck non-hateful sample).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

MHC_LANGUAGES = ("spanish", "german", "french", "portuguese", "italian")
MHC_PER_LANGUAGE = 200
MHC_SEED = 20261204
SET_NAMES = (
    "jigsaw_eval",
    "davidson2017",
    "tweeteval_offensive",
    "tweeteval_hate",
    "hatecheck",
    "mhc_non_hateful",
    "sst2_dev",
)


@dataclass(frozen=True)
class EvalSet:
    name: str
    texts: list[str]
    harmful: np.ndarray | None  # bool per text; None: every text is harmless
    frame: pd.DataFrame | None = None  # jigsaw: the label columns; hatecheck: functionality and gold label

    @property
    def digest(self) -> str:
        """Identifies the texts (the score cache key): a changed file or sample is scored again."""
        return hashlib.sha256("\n\x00".join(self.texts).encode()).hexdigest()[:16]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


def jigsaw_eval(root: Path) -> EvalSet:
    frame = pd.read_csv(root / "jigsaw" / "eval.csv")
    labels = ["toxic", "severe_toxic", "obscene", "threat", "insult", "identity_hate"]
    harmful = frame[labels].to_numpy().any(axis=1)
    return EvalSet("jigsaw_eval", frame["comment_text"].fillna("").tolist(), harmful, frame[labels])


def davidson(root: Path) -> EvalSet:
    frame = pd.read_csv(root / "tweets" / "davidson2017_hate-speech-and-offensive-language" / "labeled_data.csv")
    return EvalSet("davidson2017", frame["tweet"].tolist(), (frame["class"] != 2).to_numpy())


def tweeteval(root: Path, task: str) -> EvalSet:
    folder = root / "tweets" / f"tweeteval_{task}"
    texts, labels = _lines(folder / "test_text.txt"), _lines(folder / "test_labels.txt")
    if len(texts) != len(labels):
        raise ValueError(f"{folder}: {len(texts)} texts but {len(labels)} labels")
    return EvalSet(f"tweeteval_{task}", texts, np.array([label.strip() == "1" for label in labels]))


def hatecheck(root: Path) -> EvalSet:
    cases = pd.read_csv(root / "hatecheck" / "test_suite_cases.csv")
    frame = cases[["functionality", "label_gold"]].reset_index(drop=True)
    harmful = (frame["label_gold"] == "hateful").to_numpy()
    return EvalSet("hatecheck", cases["test_case"].str.strip().tolist(), harmful, frame)


def mhc_non_hateful(root: Path) -> EvalSet:
    """A seeded sample of 200 non-hateful multilingual HateCheck cases per language (1,000 in all)."""
    texts: list[str] = []
    for language in MHC_LANGUAGES:
        cases = pd.read_csv(root / "hatecheck" / "multilingual" / f"hatecheck_cases_final_{language}.csv")
        harmless = cases[cases["label_gold"] == "non-hateful"]
        texts += harmless["test_case"].str.strip().sample(n=MHC_PER_LANGUAGE, random_state=MHC_SEED).tolist()
    return EvalSet("mhc_non_hateful", texts, None)


def sst2_dev(root: Path) -> EvalSet:
    with open(root / "sst2" / "dev.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return EvalSet("sst2_dev", [sentence.strip() for sentence, _ in rows[1:]], None)


LOADERS = {
    "jigsaw_eval": jigsaw_eval,
    "davidson2017": davidson,
    "tweeteval_offensive": lambda root: tweeteval(root, "offensive"),
    "tweeteval_hate": lambda root: tweeteval(root, "hate"),
    "hatecheck": hatecheck,
    "mhc_non_hateful": mhc_non_hateful,
    "sst2_dev": sst2_dev,
}


def load_sets(root: Path, names: tuple[str, ...] | list[str] = SET_NAMES) -> dict[str, EvalSet]:
    missing = [name for name in names if name not in LOADERS]
    if missing:
        raise ValueError(f"unknown evaluation sets: {', '.join(missing)}")
    return {name: LOADERS[name](root) for name in names}
