"""`python -m training train|evaluate|export ...`"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from training.config import ConfigError, load_config
from training.data import DataError

CONFIGS = Path(__file__).parent / "configs"
EXIT_USAGE, EXIT_MODEL = 2, 3


def _recipe(value: str) -> Path:
    path = Path(value)
    return path if path.suffix in (".yaml", ".yml") else CONFIGS / f"{value}.yaml"


def _fraction(value: str) -> float:
    number = float(value)
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="fine-tune a recipe on a Jigsaw-format CSV")
    train.add_argument("--config", type=_recipe, default=CONFIGS / "minilm.yaml", help="recipe name or YAML path")
    train.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        help="Jigsaw-format CSVs or folders of them (id, comment_text, labels; empty label cell = unknown)",
    )
    train.add_argument("--resume", action="store_true", help="continue from the run's last epoch checkpoint")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override recipe fields")
    train.set_defaults(func=_train)

    evaluate = commands.add_parser("evaluate", help="ROC-AUC, PR-AUC and P/R/F1 of a TF or ONNX model folder on a CSV")
    evaluate.add_argument("model_dir", type=Path, metavar="MODEL_DIR", help="run folder, best/, TF or ONNX folder")
    evaluate.add_argument("--data", type=Path, required=True, help="CSV with comment_text and the label columns")
    evaluate.add_argument("--out", type=Path, help="report folder (default: <run>/eval/<model>-<csv> or runs/eval/...)")
    evaluate.add_argument(
        "--weighted-prevalence",
        type=_fraction,
        default=0.096,
        metavar="P",
        help="toxic share the weighted ROC-AUC re-weights to (default 0.096, the full Kaggle data)",
    )
    evaluate.add_argument("--quantization", choices=["fp32", "int8"], help="ONNX graph when a folder has both")
    evaluate.add_argument("--max-length", type=int, help="tokens per text (default: the model's or its run's)")
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--text-column", default="comment_text")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=_evaluate)

    export = commands.add_parser("export", help="ONNX folder for the bot, checked, with its models.yaml entry")
    export.add_argument("source", type=Path, metavar="RUN_OR_MODEL_DIR", help="training run (uses best/) or TF folder")
    export.add_argument("--out", type=Path, required=True, help="shipped folder, e.g. models/toxic-minilm")
    export.add_argument(
        "--int8",
        action="store_true",
        help="ship the static int8 graph, calibrated on --data training rows (default: fp32)",
    )
    export.add_argument(
        "--data",
        type=Path,
        nargs="+",
        help="the training CSVs/folders: ROC-AUC of fp32 vs int8 on the run's validation split",
    )
    export.add_argument("--work", type=Path, help="work folder for the TF copy and both graphs (default: <run>/export)")
    export.add_argument("--models-yaml", type=Path, default=Path("models.yaml"))
    export.add_argument("--write-entry", action="store_true", help="write the entry into --models-yaml (else print it)")
    export.add_argument("--name", help="models.yaml name (default: the --out folder's name)")
    export.add_argument("--display-name", help="models.yaml display_name (default: kept, or the recipe name)")
    export.add_argument(
        "--act-precision",
        type=_fraction,
        default=0.90,
        metavar="P",
        help="act thresholds keep at least this precision at each label's real-traffic prevalence (default 0.90)",
    )
    export.add_argument(
        "--thresholds-from",
        choices=["training", "shipped"],
        default="training",
        help="training: the TF model's validation scores saved in best/ (default); "
        "shipped: the shipped graph's own scores on the validation split (needs --data)",
    )
    export.add_argument("--max-mb", type=float, default=30.0, help="size the shipped folder should stay under")
    export.add_argument("--text-column", default="comment_text")
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    export.set_defaults(func=_export)
    return parser


def check_csv_header(path: Path, columns: Sequence[str]) -> None:
    """Fail fast, before any model is loaded, on a missing CSV or missing columns."""
    if not path.is_file():
        raise DataError(f"{path}: no such CSV file")
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle), [])
    missing = [column for column in columns if column not in header]
    if missing:
        raise DataError(f"{path}: missing columns {', '.join(missing)} (has {', '.join(header) or 'no header'})")


def _train(args: argparse.Namespace) -> int:
    # `--data A B key=value`: argparse hands the overrides to --data; a KEY=VALUE that is no path is an override
    overrides = [str(p) for p in args.data if "=" in str(p) and not p.exists()] + args.overrides
    args.data = [p for p in args.data if str(p) not in overrides]
    config = load_config(args.config, overrides)
    from training.sources import csv_files

    for path in csv_files(args.data):
        check_csv_header(path, [config.text_column, *config.labels])
    from training.train import train

    train(config, args.data, resume=args.resume)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # load reports of the checked model are noise here
    from training.evaluate import evaluate

    report = evaluate(
        args.model_dir,
        args.data,
        args.out,
        prevalence=args.weighted_prevalence,
        quantization=args.quantization,
        max_length=args.max_length,
        batch_size=args.batch_size,
        text_column=args.text_column,
        progress=not args.no_progress,
    )
    mean = report["mean"]
    print(f"{report['rows']} rows, {report['runtime']} {report['quantization'] or ''}".rstrip())
    print(f"mean ROC-AUC {mean['roc_auc']:.4f}", end="")
    if mean.get("roc_auc_weighted") is not None:
        print(f", weighted to {args.weighted_prevalence:.1%} toxic {mean['roc_auc_weighted']:.4f}", end="")
    print(f", mean PR-AUC {mean['pr_auc']:.4f}, mean F1 {mean['f1']:.4f}")
    print(f"report: {report['out']}")
    return 0


def _export(args: argparse.Namespace) -> int:
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # load reports of the checked model are noise here
    from training.export import export

    report = export(
        args.source,
        args.out,
        data=args.data,
        int8=args.int8,
        work_dir=args.work,
        models_yaml=args.models_yaml,
        write=args.write_entry,
        name=args.name,
        display_name=args.display_name,
        act_precision=args.act_precision,
        thresholds_from=args.thresholds_from,
        max_mb=args.max_mb,
        text_column=args.text_column,
        progress=not args.no_progress,
    )
    shipped = report["shipped"]
    print(f"shipped {shipped['folder']}: {', '.join(shipped['files'])} ({shipped['megabytes']} MB)")
    diffs = report["max_abs_logit_diff_vs_tf"]
    print(f"max abs logit difference vs TF: fp32 {diffs['fp32']:.2e}, int8 {diffs['int8']:.2e}")
    mates = report["max_abs_logit_change_with_batch_mates"]
    print(f"max abs logit change with batch mates: fp32 {mates['fp32']:.2e}, int8 {mates['int8']:.2e}")
    if report["validation"]:
        change, rows = report["validation"]["int8_change"], report["validation"]["rows"]
        weighted = change.get("roc_auc_weighted")
        print(
            f"int8 - fp32 on {rows} validation rows: ROC-AUC {change['roc_auc']:+.4f}"
            + (f" (prevalence-weighted {weighted:+.4f})" if weighted is not None else "")
            + f", F1 {change['f1']:+.4f}"
        )
    written = report["models_yaml"]["written"]
    where = f"{written} in {report['models_yaml']['file']}" if written else "not written (use --write-entry)"
    print(f"models.yaml entry ({where}):\n{report['entry_yaml']}", end="")
    print(f"report: {report['report']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("training", "bot"):  # our progress lines; libraries (quantisation, datasets) only warn
        logging.getLogger(name).setLevel(logging.INFO)
    parser = build_parser()
    args = parser.parse_args(argv)
    from bot.core.backends.onnx_export import OnnxExportError
    from bot.core.errors import ModelLoadError
    from training.evaluate import EvaluationError
    from training.export import ExportError
    from training.models_entry import EntryError

    try:
        return args.func(args)
    except (ConfigError, DataError, EvaluationError, ExportError, EntryError) as error:
        return _fail(error, EXIT_USAGE)
    except ModelLoadError as error:
        return _fail(error, EXIT_MODEL)
    except OnnxExportError as error:
        return _fail(error, 1)


def _fail(error: Exception, code: int) -> int:
    print(f"error: {' '.join(str(error).split())}", file=sys.stderr)  # one line, whatever the library wrote
    return code


if __name__ == "__main__":
    sys.exit(main())
