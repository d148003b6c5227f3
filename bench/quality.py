"""What the bot does with the evaluation sets: scores, and the decisions of the real moderation service.

    python bench/quality.py --data-root ../shared/data
    python bench/quality.py --data-root ../shared/data --model models/toxic-minilm --baseline ../old-toxic-minilm

Every text is scored by the bot's own ``Classifier`` (micro-batched, the served graph: int8 when the folder ships it),
then handed as a chat message from a new member to ``ModerationService.handle`` in a fresh chat with the default
settings, so each decision comes from the code the bot runs: the flag and act thresholds of models.yaml (or of the
folder's config.json), the default acting labels and, for a model that declares its languages, the language gate.
``--model`` is a model folder (default: the source of models.yaml's default entry; the entry whose source it is gives
its thresholds and languages, as in the bot); ``--baseline`` is another folder (the old model, kept out of git),
served with its own config.json's thresholds. When the model folder ships both graphs, Jigsaw eval is also scored
with the fp32 graph for the int8 - fp32 difference. Scores are cached per model and set under ``--cache-dir``.

Per set: ROC-AUC (the highest label's score against the gold "abusive"), the share of harmless texts flagged (for
review only) and acted on (warned, deleted or timed out), and the share of abusive texts flagged-or-acted and acted on.
HateCheck counts "flagged or acted" as hateful. Every set is evaluation-only: nothing here trains or tunes anything.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import pickle
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality_sets import SET_NAMES, EvalSet, load_sets
from bench.quality_targets import render_markdown, targets
from bot.core.classifier import Classifier
from bot.core.language import LanguageIdentifier
from bot.core.model_folder import (
    CONFIG_FILE,
    FP32_FILE,
    GRAPH_FILES,
    INT8_FILE,
    MODERATION_KEY,
    FolderConfig,
    read_folder_config,
)
from bot.core.moderation import ModerationService
from bot.core.policy import Decision
from bot.core.registry import ModelSpec, Registry, load_registry
from bot.core.types import Actor, ChatRef, Classification, Message
from bot.storage import Storage
from training.evaluate import compute_metrics

CHUNK = 2048  # texts per classify call while scoring (progress lines)
CONCURRENT_MESSAGES = 256  # messages in flight through the service at once


@dataclass(frozen=True)
class Scoring:
    """How texts are scored: the Classifier's batch size (scores of an int8 graph may depend on batch mates)."""

    cache_dir: Path
    max_batch: int = 64

    def classifier(self, registry: Registry) -> Classifier:
        return Classifier(registry, max_batch=self.max_batch, cache_size=1)

    def path(self, spec: ModelSpec, data: EvalSet) -> Path:
        return self.cache_dir / f"{spec.name}-{fingerprint(spec)}-b{self.max_batch}-{data.name}-{data.digest}.pkl"


@dataclass(frozen=True)
class Outcomes:
    """One model on one set: the scores and what the service did with each text."""

    labels: tuple[str, ...]
    probabilities: np.ndarray  # (texts, labels)
    actions: list[str]
    acted: np.ndarray  # warned, deleted or timed out
    flag_only: np.ndarray  # flagged for review, no action

    @property
    def flagged_or_acted(self) -> np.ndarray:
        return self.acted | self.flag_only


def folder_spec(name: str, folder: Path, *, quantization: str | None = None) -> ModelSpec:
    """A served model straight from a folder: its config.json's thresholds, languages and max length."""
    config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    moderation = config.get(MODERATION_KEY, {})
    fields = {"name": name, "task": "multi_label", "source": {"path": folder}, "runtime": "onnx"}
    fields["thresholds"] = moderation.get("thresholds", {})
    fields["max_length"] = moderation.get("max_length", 512)
    if moderation.get("languages") and "languages" in ModelSpec.model_fields:
        fields["languages"] = moderation["languages"]
    if quantization:
        fields["quantization"] = quantization
    return ModelSpec.model_validate(fields)


def model_spec(registry: Registry, folder: Path | None) -> ModelSpec:
    """The models.yaml entry serving ``folder`` (default: the default entry), else the folder's own settings."""
    if folder is None:
        return registry.get(registry.default)
    for spec in registry.specs.values():
        path = getattr(spec.source, "path", None)
        if path is not None and Path(path).resolve() == folder.resolve():
            return spec
    return folder_spec("model", folder)


def fingerprint(spec: ModelSpec) -> str:
    """Changes with the served files, the spec and the serving code: a retrained, re-exported or differently served
    model is scored again."""
    digest = hashlib.sha256(spec.model_dump_json(exclude={"name", "display_name", "thresholds"}).encode())
    core = Path(__file__).resolve().parent.parent / "bot" / "core"
    for path in sorted(
        [*core.glob("backends/*.py"), *core.glob("classifier*.py"), *core.glob("batch*.py"), core / "model_folder.py"]
    ):
        digest.update(path.read_bytes())
    folder = Path(spec.source.path)
    for name in (CONFIG_FILE, *GRAPH_FILES.values()):
        path = folder / name
        if path.is_file():
            stat = path.stat()
            digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _cached(path: Path) -> list[Classification] | None:
    if not path.is_file():
        return None
    try:
        return pickle.loads(path.read_bytes())  # noqa: S301 - our own cache file, in a git-ignored folder
    except (pickle.UnpicklingError, AttributeError, EOFError, TypeError):
        return None  # written by an older version of the types: score again


def _store(path: Path, answers: list[Classification]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(answers))


async def score(classifier: Classifier, spec: ModelSpec, data: EvalSet, scoring: Scoring) -> list[Classification]:
    """The Classifier's answers for every text of ``data``, from the cache when the model and texts are unchanged."""
    path = scoring.path(spec, data)
    cached = _cached(path)
    if cached is not None:
        return cached
    started, results = time.perf_counter(), []
    for start in range(0, len(data.texts), CHUNK):
        results += await classifier.classify(data.texts[start : start + CHUNK], spec.name)
        print(f"  {spec.name} {data.name}: {len(results)}/{len(data.texts)}", file=sys.stderr, end="\r")
    print(f"  {spec.name} {data.name}: {len(results)} texts in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    _store(path, results)
    return results


class Replay:
    """The service's classifier: hands back what the real Classifier answered for each text."""

    def __init__(self, specs: dict[str, ModelSpec]) -> None:
        self.specs = specs
        self.answers: dict[tuple[str, str], Classification] = {}

    def add(self, model: str, texts: Sequence[str], answers: Sequence[Classification]) -> None:
        self.answers.update({(model, text): answer for text, answer in zip(texts, answers, strict=True)})

    async def classify(self, texts: Sequence[str], model: str | None = None) -> list[Classification]:
        return [self.answers.get((model or "", text)) or self._any(model or "") for text in texts]

    def loaded_models(self) -> list[str]:
        return sorted({model for model, _ in self.answers})

    def _any(self, model: str) -> Classification:
        # a text the bench never scored: /model's test message before the chat switches (its scores are unused)
        return next(answer for (name, _), answer in self.answers.items() if name == model)

    async def folder_config(self, model: str | None = None) -> FolderConfig:
        """The served folder's own settings (thresholds, languages), as the bot's Classifier reports them."""
        path = getattr(self.specs[model or ""].source, "path", None)
        return read_folder_config(Path(path)) if path is not None else FolderConfig()


async def decide_all(service: ModerationService, spec: ModelSpec, data: EvalSet) -> list[Decision]:
    """Each text as a message from a new member of a fresh chat whose admin chose ``spec``."""
    chat = ChatRef("console", f"bench-{spec.name}-{data.name}")
    await service.set_model(chat, Actor("bench-admin", is_admin=True), spec.name)

    async def one(index: int, text: str) -> Decision:
        message = Message(chat=chat, message_id=str(index), author=Actor(f"member-{index}"), text=text)
        return (await service.handle(message)).decision

    decisions: list[Decision] = []
    for start in range(0, len(data.texts), CONCURRENT_MESSAGES):
        chunk = data.texts[start : start + CONCURRENT_MESSAGES]
        decisions += await asyncio.gather(*(one(start + i, text) for i, text in enumerate(chunk)))
    return decisions


async def run_model(
    spec: ModelSpec, registry: Registry, sets: dict[str, EvalSet], scoring: Scoring
) -> dict[str, Outcomes]:
    classifier = scoring.classifier(registry)
    storage = await Storage.open(":memory:")
    replay = Replay({spec.name: spec})
    outcomes: dict[str, Outcomes] = {}
    try:
        # explanations (extra forward passes on edited texts) never change a decision: not needed here
        service = ModerationService(replay, storage, registry, explain_events=False)
        for name, data in sets.items():
            answers = await score(classifier, spec, data, scoring)
            replay.add(spec.name, data.texts, answers)
            decisions = await decide_all(service, spec, data)
            outcomes[name] = Outcomes(
                labels=answers[0].labels,
                probabilities=np.array([answer.scores for answer in answers], dtype=np.float32),
                actions=[str(decision.action) for decision in decisions],
                acted=np.array([decision.is_strike for decision in decisions]),  # warned, deleted or timed out
                flag_only=np.array([str(decision.action) == "flag" for decision in decisions]),
            )
    finally:
        await classifier.aclose()
        await storage.close()
    return outcomes


def set_report(data: EvalSet, out: Outcomes) -> dict:
    top = out.probabilities.max(axis=1)
    harmful = data.harmful if data.harmful is not None else np.zeros(len(data.texts), dtype=bool)
    report: dict[str, object] = {"rows": len(data.texts), "abusive": int(harmful.sum())}
    if 0 < harmful.sum() < len(harmful):
        report["roc_auc"] = float(roc_auc_score(harmful, top))
    report["harmless_flagged"] = float(out.flag_only[~harmful].mean())
    report["harmless_acted"] = float(out.acted[~harmful].mean())
    if harmful.any():
        report["abusive_flagged_or_acted"] = float(out.flagged_or_acted[harmful].mean())
        report["abusive_acted"] = float(out.acted[harmful].mean())
    if data.name == "jigsaw_eval":
        metrics = compute_metrics(data.frame.to_numpy(), out.probabilities, list(out.labels), {})
        report["mean_roc_auc"] = metrics["mean"]["roc_auc"]
        report["mean_roc_auc_weighted"] = metrics["mean"]["roc_auc_weighted"]
    if data.name == "tweeteval_offensive":
        report["macro_f1_flagged"] = float(f1_score(harmful, out.flagged_or_acted, average="macro"))
    if data.name == "hatecheck":
        correct = out.flagged_or_acted == harmful
        report["accuracy"] = float(correct.mean())
        by_function = data.frame.assign(correct=correct).groupby("functionality")["correct"].mean()
        report["per_functionality"] = {name: float(value) for name, value in by_function.sort_values().items()}
    return report


def fp32_delta(model: ModelSpec, registry: Registry, sets: dict[str, EvalSet], scoring: Scoring) -> float | None:
    """Jigsaw eval's weighted mean ROC-AUC, int8 minus fp32, when the folder ships both graphs."""
    folder = Path(model.source.path)
    if "jigsaw_eval" not in sets or not ((folder / FP32_FILE).is_file() and (folder / INT8_FILE).is_file()):
        return None
    fp32 = model.model_copy(update={"name": f"{model.name}-fp32", "quantization": "fp32"})
    int8 = model.model_copy(update={"name": f"{model.name}-int8", "quantization": "int8"})
    both = Registry(registry.path, fp32.name, {fp32.name: fp32, int8.name: int8})
    data = sets["jigsaw_eval"]

    async def weighted(spec: ModelSpec) -> float:
        classifier = scoring.classifier(both)
        try:
            answers = await score(classifier, spec, data, scoring)
        finally:
            await classifier.aclose()
        probabilities = np.array([answer.scores for answer in answers], dtype=np.float32)
        return compute_metrics(data.frame.to_numpy(), probabilities, list(answers[0].labels), {})["mean"][
            "roc_auc_weighted"
        ]

    return asyncio.run(weighted(int8)) - asyncio.run(weighted(fp32))


def not_english(sets: dict[str, EvalSet]) -> dict[str, float]:
    """Report only: the share of each set that the language gate's identifier calls confidently not English."""
    identifier = LanguageIdentifier()
    return {
        name: float(np.mean([identifier.foreign_language(text, ("en",)) is not None for text in data.texts]))
        for name, data in sets.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, required=True, help="the shared data folder (../shared/data)")
    parser.add_argument("--model", type=Path, help="model folder (default: the source of models.yaml's default)")
    parser.add_argument("--baseline", type=Path, help="another model folder to compare with (the old model)")
    parser.add_argument("--models-file", type=Path, default=Path("models.yaml"))
    parser.add_argument("--sets", nargs="+", choices=SET_NAMES, default=list(SET_NAMES))
    parser.add_argument("--no-fp32", action="store_true", help="skip the int8 - fp32 comparison")
    parser.add_argument("--out", type=Path, default=Path("bench/results/quality.json"))
    parser.add_argument("--cache-dir", type=Path, default=Path("bench/results/cache"))
    parser.add_argument(
        "--max-batch", type=int, default=64, help="the Classifier's batch size (1: each text alone, as in a quiet chat)"
    )
    args = parser.parse_args(argv)

    for folder in (args.model, args.baseline):
        if folder is not None and not (folder / CONFIG_FILE).is_file():
            parser.error(f"{folder} is not a model folder (no {CONFIG_FILE})")
    shipped = load_registry(args.models_file)
    model = model_spec(shipped, args.model)
    specs = {model.name: model}
    if args.baseline is not None:
        specs["baseline"] = folder_spec("baseline", args.baseline)
    registry = Registry(shipped.path, model.name, specs)
    sets = load_sets(args.data_root, args.sets)
    if args.max_batch < 1:
        parser.error("--max-batch must be at least 1")
    scoring = Scoring(args.cache_dir, args.max_batch)

    results: dict[str, dict] = {}
    for name, spec in reversed(specs.items()):
        print(f"{name}: {spec.source}", file=sys.stderr)
        outcomes = asyncio.run(run_model(spec, registry, sets, scoring))
        results[name] = {set_name: set_report(sets[set_name], out) for set_name, out in outcomes.items()}
    delta = None if args.no_fp32 else fp32_delta(model, registry, sets, scoring)
    report = {
        "model": model.name,
        "baseline": str(args.baseline) if args.baseline else None,
        "max_batch": args.max_batch,
        "columns": list(results),
        "int8_minus_fp32_weighted_roc_auc": delta,
        "targets": targets(results, model.name, delta),
        "not_english": not_english(sets),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    table = render_markdown(report)
    args.out.with_suffix(".md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
