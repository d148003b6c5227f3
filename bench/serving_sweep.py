"""The sweep behind the serving defaults: onnxruntime session options, then the Classifier's batching settings.

    nice -n 10 python -m bench.serving_sweep                       # the shipped model, real tweets when present
    python -m bench.serving_sweep --fp32-graph runs/x/export/onnx/model.onnx   # also the transformer optimiser

1. Session options on the served graph alone (pre-tokenised, length-sorted batches of 32, best of 3): graph
   optimisation level, intra-op threads, spinning, sequential vs parallel execution. Wall msg/s and msg per CPU-second
   (the second is what a busy machine leaves comparable).
2. With ``--fp32-graph``: ``onnxruntime.transformers.optimizer`` (model type bert: attention, layer-norm and GELU
   fusions) on that fp32 graph, fused vs not, and which fusions it found.
3. The Classifier (its own process per setting group, ``bench/throughput_worker.py``): ``max_batch_tokens`` x
   ``max_wait_ms``: msg/s and p50/p99 at the offered loads.

Writes ``bench/results/serving_sweep.json`` and prints the tables; bench/README.md keeps the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.throughput import DEFAULT_MESSAGES, cpu_facts, read_messages, render, run_job  # noqa: E402


def session(path: Path, *, level: str, threads: int, spinning: bool, parallel: bool) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 2 if parallel else 1
    options.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def timed_passes(run, feeds: list[dict]) -> dict[str, float]:
    run(feeds[0])
    walls, cpus = [], []
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        for feed in feeds:
            run(feed)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return {"wall": min(walls), "cpu": min(cpus)}


def feeds_of(rows: list[list[int]], pad_id: int) -> list[dict]:
    from bot.core.backends.base import pad_rows

    order = np.argsort([len(row) for row in rows], kind="stable")
    feeds = []
    for start in range(0, len(rows), 32):
        ids, mask = pad_rows([rows[i] for i in order[start : start + 32]], pad_id)
        feeds.append({"input_ids": ids, "attention_mask": mask})
    return feeds


def sweep_sessions(graph: Path, feeds: list[dict], count: int) -> list[dict]:
    cores = len(os.sched_getaffinity(0))
    settings = [{"level": level, "threads": cores, "spinning": False, "parallel": False} for level in ("basic", "all")]
    settings += [{"level": "extended", "threads": cores, "spinning": False, "parallel": False}]
    settings += [{"level": "all", "threads": 1, "spinning": False, "parallel": False}]
    settings += [{"level": "all", "threads": cores, "spinning": True, "parallel": False}]
    settings += [{"level": "all", "threads": cores, "spinning": False, "parallel": True}]
    rows = []
    for setting in settings:
        current = session(graph, **setting)
        times = timed_passes(lambda feed, current=current: current.run(None, feed), feeds)
        rows.append({**setting, "msgs_per_s": count / times["wall"], "msgs_per_cpu_s": count / times["cpu"]})
    return rows


def sweep_fusion(fp32_graph: Path, feeds: list[dict], count: int, work: Path) -> list[dict]:
    """fp32 graph as exported vs after onnxruntime's transformer optimiser (attention fusion on)."""
    from onnxruntime.transformers.optimizer import optimize_model

    fused_path = work / "fused.onnx"
    optimized = optimize_model(str(fp32_graph), model_type="bert", opt_level=0)  # heads and width detected
    optimized.save_model_to_file(str(fused_path))
    found = {name: count for name, count in optimized.get_fused_operator_statistics().items() if count}
    cores = len(os.sched_getaffinity(0))
    rows = []
    for name, path in (("as exported", fp32_graph), ("transformer optimiser", fused_path)):
        current = session(path, level="all", threads=cores, spinning=False, parallel=False)
        times = timed_passes(lambda feed, current=current: current.run(None, feed), feeds)
        rows.append({"graph": name, "msgs_per_s": count / times["wall"], "msgs_per_cpu_s": count / times["cpu"]})
    rows[1]["fusions"] = ", ".join(f"{name} {count}" for name, count in found.items()) or "none"
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serving_sweep", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=Path, default=DEFAULT_MESSAGES)
    parser.add_argument("--models-yaml", type=Path, default=REPO / "models.yaml")
    parser.add_argument("--model", help="models.yaml entry (default: its default)")
    parser.add_argument("--fp32-graph", type=Path, help="an fp32 model.onnx to try the transformer optimiser on")
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--rates", default="100,300")
    parser.add_argument("--duration", type=float, default=6.0)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "serving_sweep.json")
    args = parser.parse_args(argv)

    from bot.core.backends.base import load_backend
    from bot.core.registry import load_registry

    messages, source = read_messages(args.messages, args.limit, "comment_text")
    registry = load_registry(args.models_yaml)
    spec = registry.get(args.model or registry.default)
    backend = load_backend(spec)
    rows, _ = backend.encoder.encode(messages)
    feeds = feeds_of(rows, backend.pad_id)
    work = Path(tempfile.mkdtemp(prefix="serving-sweep-"))
    report: dict[str, Any] = {"cpu": cpu_facts(), "source": source, "messages": len(messages), "model": spec.name}
    report["load_average_before"] = os.getloadavg()[0]
    print(f"CPU {report['cpu']}; {len(messages)} messages from {source}", file=sys.stderr)

    report["sessions"] = sweep_sessions(backend.graph, feeds, len(rows))
    print(f"\nsession options, {backend.graph.name} alone (batches of 32, best of 3)")
    columns = [("level", "optimisation", ""), ("threads", "intra threads", ""), ("spinning", "spinning", "")]
    columns += [("parallel", "parallel", ""), ("msgs_per_s", "msg/s", ".1f"), ("msgs_per_cpu_s", "msg/CPU-s", ".1f")]
    print(render(report["sessions"], columns))
    if args.fp32_graph:
        fp32_rows, _ = backend.encoder.encode(messages)
        report["fusion"] = sweep_fusion(args.fp32_graph, feeds_of(fp32_rows, backend.pad_id), len(rows), work)
        print(f"\ntransformer optimiser on {args.fp32_graph}")
        columns = [("graph", "graph", ""), ("msgs_per_s", "msg/s", ".1f"), ("msgs_per_cpu_s", "msg/CPU-s", ".1f")]
        print(render(report["fusion"], [*columns, ("fusions", "fusions found", "")]))

    rates = [float(rate) for rate in args.rates.split(",")]
    settings = [
        {"max_batch_tokens": tokens, "max_wait_ms": wait} for tokens in (512, 1024, 2048, 4096) for wait in (2.0, 5.0)
    ]
    job = {"job": "sweep", "settings": settings, "messages": messages, "rates": rates, "duration_s": args.duration}
    job |= {"budget_s": 10.0, "seed": 0, "models_yaml": str(args.models_yaml.resolve()), "model": spec.name}
    result = run_job(job, work, timeout=3600)
    table = []
    for entry in result.get("sweep", []):
        row = {**entry["settings"], "msgs_per_s": entry["throughput"]["msgs_per_s"]}
        for rate in rates:
            load = entry[f"load_{rate:g}"]
            row |= {f"p50_{rate:g}": load["p50_ms"] or "overload", f"p99_{rate:g}": load["p99_ms"] or "overload"}
        table.append(row)
    report["classifier"] = table or result
    print("\nClassifier settings (flood cache off)")
    columns = [
        ("max_batch_tokens", "max batch tokens", ""),
        ("max_wait_ms", "max wait ms", ""),
        ("msgs_per_s", "msg/s", ".1f"),
    ]
    for rate in rates:
        columns += [(f"p50_{rate:g}", f"p50 @{rate:g}", ".1f"), (f"p99_{rate:g}", f"p99 @{rate:g}", ".1f")]
    print(render(table, columns) if table else f"failed: {result.get('error')}")
    report["load_average_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    print(f"\nload average {report['load_average_before']:.1f} -> {report['load_average_after']:.1f}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
