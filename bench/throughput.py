"""Throughput, latency and memory of the bot's inference against the original's way, on the same messages.

    nice -n 10 python -m bench.throughput ../shared/data/tweets/tweeteval_offensive/test_text.txt \\
        ../shared/data/tweets/tweeteval_offensive/val_text.txt --model-dir runs/toxic-minilm/best --out throughput.json

Without ``--model-dir`` it builds the tiny test model (figures then only show the machinery). ``--quick`` shortens
every phase. Variants, each in its own process (``bench/throughput_worker.py``) so import time and RSS are its own:

- ``original``: a transformers ``pipeline("text-classification", top_k=None)`` on the TF model, one call per message;
- ``core-tf``, ``core-onnx-fp32``, ``core-onnx-int8``: the bot's Classifier (micro-batching) on the TF model, and on
  its ONNX fp32 / int8 exports.

Per variant: messages/s pushing all messages as fast as they are answered (capped at ``--budget`` seconds), the
useful GFLOP/s that implies (unpadded tokens) against a numpy fp32 matmul peak measured here, p50/p99 latency under
Poisson arrivals at ``--rate`` messages/s for ``--duration`` seconds, import and load time, RSS after loading and peak.
Then a sweep of the micro-batcher (max batch, max wait, length grouping) on ONNX int8, and the footprint of a whole
bot process serving only ONNX. A table on stdout; everything in ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot.core.backends.onnx_cache import folder_fingerprint  # noqa: E402 - needs the repo on sys.path

VARIANTS = ("original", "core-tf", "core-onnx-fp32", "core-onnx-int8")
ENTRY = {"core-tf": "bench-tf", "core-onnx-fp32": "bench-fp32", "core-onnx-int8": "bench-int8"}
RUNTIME_FILES = ("tokenizer.json", "config.json")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n")[0])
    parser.add_argument("messages", nargs="+", type=Path, help="text files, one message per line")
    parser.add_argument("--model-dir", type=Path, help="a TF save_pretrained folder (default: the tiny test model)")
    parser.add_argument("--task", choices=("multi_label", "single_label"), help="default: from config.json")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--limit", type=int, default=2000, help="messages used (default 2000)")
    parser.add_argument("--rate", type=float, default=100.0, help="offered load, messages/s (default 100)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of offered load per variant")
    parser.add_argument("--budget", type=float, default=30.0, help="max seconds of the messages/s phase per variant")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {VARIANTS}")
    parser.add_argument("--no-sweep", action="store_true", help="skip the micro-batcher sweep")
    parser.add_argument("--quick", action="store_true", help="300 messages, 3 s of load, 8 s budgets")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-throughput")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.limit, args.duration, args.budget = min(args.limit, 300), min(args.duration, 3.0), min(args.budget, 8.0)
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    return args


def read_messages(paths: list[Path], limit: int) -> list[str]:
    messages: list[str] = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            messages.extend(line.strip() for line in handle if line.strip())
    if not messages:
        raise SystemExit("no messages in " + ", ".join(map(str, paths)))
    return messages[:limit]


def run_job(job: dict, work: Path, *, timeout: float) -> dict:
    """Run one ``throughput_worker`` job in a fresh process; its last stdout line is the JSON result."""
    path = work / f"job-{job['job']}-{job.get('name', '')}.json"
    path.write_text(json.dumps(job), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.throughput_worker", str(path)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return {**json.loads(lines[-1]), "wall_s": time.perf_counter() - started}


def prepare_model(args: argparse.Namespace, work: Path) -> tuple[Path, dict[str, Path], dict]:
    """The TF folder, its ONNX fp32 / int8 folders (exported once per folder state), and the export figures."""
    model_dir = args.model_dir
    if model_dir is None:
        tiny = work / "tiny"
        if not (tiny / "models.yaml").is_file():
            print("building the tiny test model ...", file=sys.stderr)
            build = [sys.executable, "-m", "tests.tiny_models", str(tiny)]
            subprocess.run(build, cwd=REPO, check=True, stdout=sys.stderr)
        model_dir = tiny / "tiny-toxic"
    model_dir = model_dir.resolve()
    exported = work / f"onnx-{model_dir.name}-{folder_fingerprint(model_dir)}"
    export: dict = {"reused": True}
    if not (exported / "model.int8.onnx").is_file():
        print(f"exporting {model_dir} to ONNX ...", file=sys.stderr)
        export = run_job({"job": "export", "model_dir": str(model_dir), "out_dir": str(exported)}, work, timeout=1800)
        if "error" in export:
            raise SystemExit(f"export failed: {export['error']}")
    folders = {}
    for quantization, graph in (("fp32", "model.onnx"), ("int8", "model.int8.onnx")):
        folder = exported / quantization  # one graph per folder, so each models.yaml entry serves exactly one
        folder.mkdir(exist_ok=True)
        for name in (*RUNTIME_FILES, graph):
            if not (folder / name).exists():
                shutil.copyfile(exported / name, folder / name)
        folders[quantization] = folder
    return model_dir, folders, export


def write_models_yaml(work: Path, model_dir: Path, folders: dict[str, Path], task: str, max_length: int) -> Path:
    entries = {"bench-tf": ("tensorflow", model_dir), "bench-fp32": ("onnx", folders["fp32"])}
    entries["bench-int8"] = ("onnx", folders["int8"])
    lines = ["default: bench-int8", "models:"]
    for name, (runtime, folder) in entries.items():
        source = json.dumps({"path": str(folder)})
        lines.append(f"  {name}: {{task: {task}, runtime: {runtime}, max_length: {max_length}, source: {source}}}")
    path = work / "models.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def flops_per_token_fn(config: dict):
    """FLOPs of one token in a BERT-like encoder of ``length`` tokens: projections, FFN and attention, x2 per MAC."""
    hidden = config.get("hidden_size") or config["dim"]
    inner = config.get("intermediate_size") or config["hidden_dim"]
    layers = config.get("num_hidden_layers") or config["n_layers"]
    return lambda length: 2 * layers * (4 * hidden * hidden + 2 * hidden * inner + 2 * length * hidden)


def token_lengths(folder: Path, messages: list[str], max_length: int) -> list[int]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return [len(encoding.ids) for encoding in tokenizer.encode_batch(messages)]


def sweep_settings(quick: bool) -> list[dict]:
    """Micro-batcher settings to compare: length grouping layers, max batch, max wait (latency only)."""
    settings: list[dict] = [{"grouping": grouping} for grouping in ("none", "classifier", "both")]
    settings += [{"max_batch": size} for size in ((16, 64) if quick else (8, 16, 64))]
    settings += [{"max_wait_ms": wait, "throughput": False} for wait in ((1, 10) if quick else (0, 1, 2, 10))]
    return settings


def summarize(name: str, result: dict, lengths: list[int], flops, peak: float, base_rate: float | None) -> dict:
    """One table row from a worker's result."""
    if "error" in result:
        return {"variant": name, "error": result["error"]}
    throughput, load = result["throughput"], result["load"]
    done = throughput["messages"]
    useful = sum(length * flops(length) for length in lengths[:done])
    gflops = useful / throughput["seconds"] / 1e9
    return {
        "variant": name,
        "msgs_per_s": throughput["msgs_per_s"],
        "x_original": throughput["msgs_per_s"] / base_rate if base_rate else None,
        "gflops": gflops,
        "pct_peak": 100 * gflops / peak if peak else None,
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "answered": f"{load['completed']}/{load['offered']}",
        "import_s": result.get("import_s"),
        "load_s": result.get("load_s"),
        "rss_mb": result.get("rss_after_load_mb"),
        "peak_rss_mb": result.get("peak_rss_mb"),
    }


def render(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A plain aligned table: columns are (key, header, format)."""

    def cell(row: dict, key: str, fmt: str) -> str:
        if "error" in row and key not in row:
            return "error" if key == columns[1][0] else ""
        value = row.get(key)
        if value is None:
            return "overload" if key.endswith("_ms") else "-"
        return format(value, fmt) if fmt else str(value)

    table = [[header for _, header, _ in columns]] + [[cell(row, key, fmt) for key, _, fmt in columns] for row in rows]
    widths = [max(len(line[index]) for line in table) for index in range(len(columns))]
    out = [" | ".join(text.rjust(width) for text, width in zip(line, widths, strict=True)) for line in table]
    out.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(out)


MAIN_COLUMNS = [
    ("variant", "variant", ""),
    ("msgs_per_s", "msg/s", ".1f"),
    ("x_original", "x orig", ".1f"),
    ("gflops", "GFLOP/s", ".1f"),
    ("pct_peak", "% peak", ".0f"),
    ("p50_ms", "p50 ms", ".1f"),
    ("p99_ms", "p99 ms", ".1f"),
    ("answered", "answered", ""),
    ("import_s", "import s", ".2f"),
    ("load_s", "load s", ".2f"),
    ("rss_mb", "RSS MB", ".0f"),
    ("peak_rss_mb", "peak RSS MB", ".0f"),
]
SWEEP_COLUMNS = [
    ("max_batch", "max batch", ""),
    ("max_wait_ms", "max wait ms", ""),
    ("grouping", "length groups", ""),
    ("msgs_per_s", "msg/s", ".1f"),
    ("p50_ms", "p50 ms", ".1f"),
    ("p99_ms", "p99 ms", ".1f"),
    ("answered", "answered", ""),
]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = args.work_dir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    messages = read_messages(args.messages, args.limit)
    model_dir, folders, export = prepare_model(args, work)
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    task = args.task or (
        "multi_label" if config.get("problem_type") == "multi_label_classification" else "single_label"
    )
    models_yaml = write_models_yaml(work, model_dir, folders, task, args.max_length)
    lengths = token_lengths(folders["int8"], messages, args.max_length)
    flops = flops_per_token_fn(config)
    load_before = os.getloadavg()

    peak = run_job({"job": "peak"}, work, timeout=300).get("matmul_gflops", 0.0)
    print(f"numpy fp32 matmul peak: {peak:.0f} GFLOP/s", file=sys.stderr)
    common = {"messages": messages, "rate": args.rate, "duration_s": args.duration, "budget_s": args.budget}
    common |= {"seed": args.seed, "models_yaml": str(models_yaml), "model_dir": str(model_dir)}
    timeout = 600 + args.budget + 3 * args.duration
    results: dict[str, dict] = {}
    for name in args.variants.split(","):
        print(f"running {name} ...", file=sys.stderr)
        if name == "original":
            job = {"job": "original", "name": name, **common}
        else:
            runtime = "tensorflow" if name == "core-tf" else "onnx"
            job = {"job": "core", "name": name, "model": ENTRY[name], "runtime": runtime, **common}
        results[name] = run_job(job, work, timeout=timeout)
    base = results.get("original", {}).get("throughput", {}).get("msgs_per_s")
    rows = [summarize(name, result, lengths, flops, peak, base) for name, result in results.items()]

    sweep_rows: list[dict] = []
    batching_rows: list[dict] = []
    sweep: dict = {}
    if not args.no_sweep:
        print("sweeping the micro-batcher on ONNX int8 ...", file=sys.stderr)
        settings = sweep_settings(args.quick)
        sweep_job = {**common, "job": "sweep", "model": "bench-int8", "settings": settings}
        sweep_job |= {"duration_s": min(args.duration, 5.0), "budget_s": min(args.budget, 10.0)}
        sweep = run_job(sweep_job, work, timeout=timeout * 2)
        for entry in sweep.get("sweep", []):
            chosen = {"max_batch": 32, "max_wait_ms": 5.0, "grouping": "both", **entry["settings"]}
            load = entry["load"]
            sweep_rows.append(
                {**chosen, "msgs_per_s": entry.get("throughput", {}).get("msgs_per_s")}
                | {"p50_ms": load["p50_ms"], "p99_ms": load["p99_ms"]}
                | {"answered": f"{load['completed']}/{load['offered']}"}
            )
        batching = run_job({**common, "job": "batching", "model": "bench-int8"}, work, timeout=timeout)
        per_message = batching.get("ms_per_message", {})
        batching_rows = [{"case": case, "ms": ms, "rate": 1000 / ms} for case, ms in per_message.items()]
    footprint = run_job({**common, "job": "footprint", "model": "bench-int8"}, work, timeout=timeout)

    print(
        f"\n{len(messages)} messages ({sum(lengths) / len(lengths):.1f} tokens on average, max length "
        f"{args.max_length}); model {model_dir} ({task}); {flops(32) * 32 / 1e9:.3g} GFLOP per 32-token message; "
        f"offered load {args.rate:g} msg/s for {args.duration:g} s; numpy fp32 matmul peak {peak:.0f} GFLOP/s; "
        f"load average {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}\n"
    )
    print(render(rows, MAIN_COLUMNS))
    if sweep_rows:
        print(f"\nmicro-batcher sweep (core + ONNX int8, {min(args.duration, 5.0):g} s at {args.rate:g} msg/s)")
        print(render(sweep_rows, SWEEP_COLUMNS))
    elif "error" in sweep:
        print(f"\nmicro-batcher sweep failed: {sweep['error']}")
    if batching_rows:
        print("\nforward-pass cost per message, ONNX int8 backend alone (median of 5 interleaved draws)")
        print(render(batching_rows, [("case", "case", ""), ("ms", "ms/message", ".2f"), ("rate", "msg/s", ".0f")]))
    if "error" in footprint:
        print(f"\nONNX-only bot footprint failed: {footprint['error']}")
    else:
        print(
            f"\nONNX-only bot process ({', '.join(footprint['modules'])}): import {footprint['import_s']:.2f} s, "
            f"RSS {footprint['rss_after_load_mb']:.0f} MB after loading int8, peak {footprint['peak_rss_mb']:.0f} MB, "
            f"TensorFlow imported: {'yes' if footprint['tensorflow_imported'] else 'no'}"
        )
    if args.out:
        report: dict[str, Any] = {"command": [sys.executable, "-m", "bench.throughput", *sys.argv[1:]]}
        report |= {"messages": len(messages), "mean_tokens": sum(lengths) / len(lengths), "model_dir": str(model_dir)}
        report |= {"task": task, "max_length": args.max_length, "rate": args.rate, "duration_s": args.duration}
        report |= {"matmul_peak_gflops": peak, "load_average": [load_before[0], os.getloadavg()[0]]}
        report |= {"export": export, "rows": rows, "sweep": sweep_rows, "footprint": footprint}
        report |= {"batching": batching_rows, "raw": results}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
