"""The Targets table of issue 12 from bench/quality.py's results, and the Markdown report."""

from __future__ import annotations

import operator
from collections.abc import Callable

# (figure, set, key, comparison, target, format); a key may be a function of the set's report
TARGETS: tuple[tuple[str, str, str | Callable[[dict], float], str, float, str], ...] = (
    ("SST-2 dev, acted on", "sst2_dev", "harmless_acted", "<=", 0.002, "pct"),
    ("TweetEval-offensive test, not-offensive tweets acted on", "tweeteval_offensive", "harmless_acted", "<=", 0.003,
     "pct"),
    ("TweetEval-offensive test, offensive tweets flagged or acted on", "tweeteval_offensive",
     "abusive_flagged_or_acted", ">=", 0.75, "2f"),
    ("HateCheck accuracy (flagged or acted = hateful)", "hatecheck", "accuracy", ">=", 0.80, "3f"),
    ("HateCheck, lowest functionality", "hatecheck", lambda report: min(report["per_functionality"].values()), ">=",
     0.40, "2f"),
    ("TweetEval-hate test ROC-AUC (max over labels)", "tweeteval_hate", "roc_auc", ">=", 0.70, "3f"),
    ("multilingual HateCheck non-hateful sample (1,000, five languages), acted on", "mhc_non_hateful",
     "harmless_acted", "<=", 0.005, "pct"),
    ("TweetEval-offensive test macro-F1 at the flag thresholds", "tweeteval_offensive", "macro_f1_flagged", ">=",
     0.80, "3f"),
    ("Davidson ROC-AUC", "davidson2017", "roc_auc", ">=", 0.94, "3f"),
    ("Jigsaw eval.csv, prevalence-weighted mean ROC-AUC", "jigsaw_eval", "mean_roc_auc_weighted", ">=", 0.980, "4f"),
)  # fmt: skip
COMPARE = {"<=": operator.le, ">=": operator.ge}
FP32_FIGURE = "int8 vs fp32, weighted ROC-AUC (Jigsaw eval)"
FP32_LIMIT = 0.002


def _format(value: float | None, style: str) -> str:
    if value is None:
        return "n/a"
    if style == "pct":
        return f"{value:.1%}"
    return f"{value:+.4f}" if style == "delta" else format(value, f".{style}")


def targets(results: dict[str, dict], model: str, fp32_delta: float | None) -> list[dict]:
    """One row per target: the value of every column, the target, and whether ``model`` meets it."""
    rows = []
    for figure, set_name, key, comparison, target, style in TARGETS:
        values = {}
        for column, sets in results.items():
            report = sets.get(set_name)
            if report is None:
                values[column] = None
            else:
                values[column] = key(report) if callable(key) else report.get(key)
        met = None if values.get(model) is None else COMPARE[comparison](values[model], target)
        rows.append({"figure": figure, "values": values, "target": f"{comparison} {_format(target, style)}",
                     "style": style, "met": met})  # fmt: skip
    values = dict.fromkeys(results)
    values[model] = fp32_delta
    met = None if fp32_delta is None else abs(fp32_delta) <= FP32_LIMIT
    rows.append({"figure": FP32_FIGURE, "values": values, "target": f"within {FP32_LIMIT}", "style": "delta",
                 "met": met})  # fmt: skip
    return rows


def render_markdown(report: dict) -> str:
    columns: list[str] = report["columns"]
    results: dict[str, dict] = report["results"]
    met_text = {True: "yes", False: "**no**", None: "n/a"}
    lines = [
        "| figure | " + " | ".join(columns) + " | target | met |",
        "| --- |" + " --- |" * (len(columns) + 2),
    ]
    for row in report["targets"]:
        cells = [_format(row["values"].get(column), row["style"]) for column in columns]
        lines.append(f"| {row['figure']} | " + " | ".join(cells) + f" | {row['target']} | {met_text[row['met']]} |")
    lines += [
        "",
        "| set | model | texts | abusive | ROC-AUC | harmless flagged | harmless acted on | abusive flagged or acted "
        "| abusive acted on |",
        "| --- |" + " --- |" * 8,
    ]
    set_names = list(next(iter(results.values())))
    for set_name in set_names:
        for column in columns:
            row = results[column][set_name]
            cells = [
                str(row["rows"]),
                str(row["abusive"]),
                _format(row.get("roc_auc"), "3f"),
                _format(row["harmless_flagged"], "pct"),
                _format(row["harmless_acted"], "pct"),
                _format(row.get("abusive_flagged_or_acted"), "pct"),
                _format(row.get("abusive_acted"), "pct"),
            ]
            lines.append(f"| {set_name} | {column} | " + " | ".join(cells) + " |")
    if report.get("not_english"):
        title = "Texts the language identifier calls confidently not English (report only; the gate acts only for"
        lines += ["", f"{title} a model that declares its languages):", ""]
        lines += ["| " + " | ".join(report["not_english"]) + " |", "|" + " --- |" * len(report["not_english"])]
        lines.append("| " + " | ".join(_format(share, "pct") for share in report["not_english"].values()) + " |")
    if "hatecheck" in set_names:
        lines += ["", "HateCheck accuracy per functionality (flagged or acted = hateful):", ""]
        lines += ["| functionality | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
        order = results[columns[-1]]["hatecheck"]["per_functionality"]
        for name in order:
            cells = [_format(results[column]["hatecheck"]["per_functionality"].get(name), "2f") for column in columns]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
