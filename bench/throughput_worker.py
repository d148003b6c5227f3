"""One measurement of ``bench/throughput.py``, run in its own process so its import time and RSS are its own.

    python -m bench.throughput_worker JOB.json      # prints one JSON line with the results

Jobs: ``peak`` (numpy fp32 matmul GFLOP/s), ``export`` (TF folder -> ONNX fp32 + int8), ``original`` (a transformers
pipeline called once per message, as the original demo did), ``core`` (the bot's Classifier on one models.yaml entry),
``sweep`` (the Classifier's micro-batcher settings on one entry), ``batching`` (forward-pass cost by batch size
and length grouping), ``footprint`` (import the whole bot, serve ONNX).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

Call = Callable[[str], Awaitable[Any]]


def memory_mb() -> dict[str, float]:
    """Current and peak resident set size of this process, from /proc."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = int(rest.split()[0]) / 1024
    return values


def percentiles(latencies: list[float], unfinished: int) -> dict[str, float | None]:
    """p50/p99 in ms; messages still unanswered at the end count as infinitely late (reported as None)."""
    import numpy as np

    values = np.array(latencies + [np.inf] * unfinished)
    if values.size == 0:
        return {"p50_ms": None, "p99_ms": None}
    p50, p99 = np.percentile(values, [50, 99], method="higher")  # no interpolation: inf stays inf
    return {"p50_ms": None if np.isinf(p50) else p50 * 1000, "p99_ms": None if np.isinf(p99) else p99 * 1000}


async def offered_load(call: Call, messages: Sequence[str], *, rate: float, duration: float, seed: int) -> dict:
    """Poisson arrivals at ``rate`` messages/s for ``duration`` s (independent single-message calls, as from many
    chats); latency runs from the scheduled arrival to the answer. Waits at most ``duration`` more for stragglers."""
    import numpy as np

    loop = asyncio.get_running_loop()
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=int(rate * duration * 2) + 10)
    arrivals = np.cumsum(gaps)
    arrivals = arrivals[arrivals < duration]
    latencies: list[float] = []

    async def one(text: str, due: float) -> None:
        await call(text)
        latencies.append(loop.time() - due)

    start = loop.time()
    tasks = []
    for index, offset in enumerate(arrivals):
        delay = start + offset - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(messages[index % len(messages)], start + offset)))
    _, pending = await asyncio.wait(tasks, timeout=duration) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    elapsed = loop.time() - start
    return {
        "offered_rate": rate,
        "offered": len(tasks),
        "completed": len(latencies),
        "answered_rate": len(latencies) / elapsed,
        **percentiles(latencies, len(pending)),
    }


async def closed_loop(
    call_batch: Callable[[list[str]], Awaitable[Any]], messages: Sequence[str], budget: float
) -> dict:
    """Push messages as fast as they are answered, in chunks, until all are done or ``budget`` seconds pass."""
    chunk = 256
    done = 0
    started = time.perf_counter()
    while done < len(messages) and time.perf_counter() - started < budget:
        part = list(messages[done : done + chunk])
        await call_batch(part)
        done += len(part)
    elapsed = time.perf_counter() - started
    return {"messages": done, "seconds": elapsed, "msgs_per_s": done / elapsed}


def job_peak(job: dict) -> dict:
    import numpy as np

    size = job.get("size", 2048)
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: threads, page faults
    best = min(_timed(lambda: a @ b) for _ in range(job.get("repeats", 5)))
    return {"matmul_gflops": 2 * size**3 / best / 1e9, "size": size}


def _timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def job_export(job: dict) -> dict:
    from bot.core.backends.onnx_export import export_folder

    started = time.perf_counter()
    written = export_folder(Path(job["model_dir"]), Path(job["out_dir"]))
    sizes = {name: path.stat().st_size / 1e6 for name, path in written.items()}
    return {"export_s": time.perf_counter() - started, "size_mb": sizes}


def job_original(job: dict) -> dict:
    """The original demo's inference: a TF text-classification pipeline with all scores, one call per message."""
    from transformers import pipeline

    imported = time.perf_counter()
    pipe = pipeline("text-classification", model=job["model_dir"], framework="tf", top_k=None, dtype=None)
    loaded = time.perf_counter()
    messages = job["messages"]
    pipe(messages[0])
    after_load = memory_mb()["rss_mb"]
    executor = ThreadPoolExecutor(max_workers=1)  # the demo serves one request at a time

    async def run() -> dict:
        loop = asyncio.get_running_loop()

        async def batch(texts: list[str]) -> None:
            for text in texts:
                await loop.run_in_executor(executor, pipe, text)

        async def one(text: str) -> None:
            await loop.run_in_executor(executor, pipe, text)

        throughput = await closed_loop(batch, messages, job["budget_s"])
        load = await offered_load(one, messages, rate=job["rate"], duration=job["duration_s"], seed=job["seed"])
        return {"throughput": throughput, "load": load}

    results = asyncio.run(run())
    executor.shutdown(wait=False, cancel_futures=True)
    return {
        "import_s": imported - STARTED,
        "load_s": loaded - imported,
        "rss_after_load_mb": after_load,
        **results,
    }


def _classifier(job: dict, *, max_batch: int = 32, max_wait_ms: float = 5.0, grouping: str = "both"):
    """A Classifier on the job's models.yaml. ``grouping``: both | classifier | none (which length groups are on)."""
    from bot.core.backends.base import load_backend
    from bot.core.classifier import Classifier
    from bot.core.registry import load_registry

    def loader(spec, *, cache_dir=None):
        backend = load_backend(spec, cache_dir=cache_dir)
        if grouping != "both" and hasattr(backend, "group_overhead"):
            backend.group_overhead = 10**9  # the ONNX backend's own groups off: one pass per Classifier group
        return backend

    registry = load_registry(job["models_yaml"])
    return Classifier(registry, loader=loader, max_batch=max_batch, max_wait_ms=max_wait_ms)


async def _measure_core(job: dict, settings: dict, *, throughput: bool = True) -> dict:
    from bot.core import classifier as classifier_module

    saved_ratio = classifier_module.GROUP_LENGTH_RATIO
    if settings.get("grouping") == "none":  # benchmark-only switch: the Classifier's length groups off
        classifier_module.GROUP_LENGTH_RATIO = float("inf")
    classifier = _classifier(job, **settings)
    model = job["model"]
    try:
        loading = time.perf_counter()
        await classifier.load(model)
        load_s = time.perf_counter() - loading
        messages = job["messages"]
        await classifier.classify(messages[:64], model)  # warm-up
        after_load = memory_mb()["rss_mb"]

        async def batch(texts: list[str]) -> None:
            await asyncio.gather(*(classifier.classify([text], model) for text in texts))

        async def one(text: str) -> None:
            await classifier.classify([text], model)

        result: dict[str, Any] = {"load_s": load_s, "rss_after_load_mb": after_load, "settings": settings}
        if throughput:
            result["throughput"] = await closed_loop(batch, messages, job["budget_s"])
        load = offered_load(one, messages, rate=job["rate"], duration=job["duration_s"], seed=job["seed"])
        result["load"] = await load
        return result
    finally:
        await classifier.aclose()
        classifier_module.GROUP_LENGTH_RATIO = saved_ratio


def job_core(job: dict) -> dict:
    for name in ("bot.core.classifier", "bot.core.registry", f"bot.core.backends.{job['runtime']}"):
        importlib.import_module(name)
    if job["runtime"] == "tensorflow":  # the TF backend imports these inside load(): count them as imports here
        importlib.import_module("tensorflow")
        importlib.import_module("transformers")
    imported = time.perf_counter()
    result = asyncio.run(_measure_core(job, {}))
    return {"import_s": imported - STARTED, **result, "tensorflow_imported": "tensorflow" in sys.modules}


def job_batching(job: dict) -> dict:
    """Forward-pass cost per message by batch size and by length grouping, on the backend directly.

    Settings are interleaved and each figure is the median of ``repeats`` draws, so a busy neighbour skews all alike.
    """
    import numpy as np

    from bot.core.backends.base import load_backend
    from bot.core.registry import load_registry

    backend = load_backend(load_registry(job["models_yaml"]).get(job["model"]))
    messages, rng = job["messages"], np.random.default_rng(job["seed"])
    long_text = max(messages, key=len) * 8  # reaches max_length
    sizes, repeats = job.get("sizes", [1, 2, 4, 8, 16, 32, 64]), job.get("repeats", 5)
    cases = {f"batch {size}": ("both", size, False) for size in sizes}
    for grouping in ("none", "both"):
        cases[f"32 drawn, groups {grouping}"] = (grouping, 32, False)
        cases[f"31 + 1 long, groups {grouping}"] = (grouping, 31, True)
    timings: dict[str, list[float]] = {name: [] for name in cases}
    default_overhead = backend.group_overhead
    backend.predict(messages[:64])  # warm-up
    for _ in range(repeats):
        for name, (grouping, size, with_long) in cases.items():
            texts = [messages[i] for i in rng.integers(0, len(messages), size)] + ([long_text] if with_long else [])
            backend.group_overhead = default_overhead if grouping == "both" else 10**9
            timings[name].append(_timed(lambda texts=texts: backend.predict(texts)) / len(texts))
    backend.group_overhead = default_overhead
    return {"ms_per_message": {name: float(np.median(values)) * 1000 for name, values in timings.items()}}


def job_sweep(job: dict) -> dict:
    """Micro-batcher settings: each one in a fresh Classifier (same process, model files already in page cache)."""
    rows = []
    for entry in job["settings"]:
        settings = {key: value for key, value in entry.items() if key != "throughput"}
        rows.append(asyncio.run(_measure_core(job, settings, throughput=entry.get("throughput", True))))
    return {"sweep": rows}


def job_footprint(job: dict) -> dict:
    """Import what a running bot imports, load the ONNX model, classify: import time, RSS, TensorFlow or not."""
    modules = ["bot.app", "bot.adapters.discord_bot", "bot.adapters.telegram_bot", "bot.core.classifier"]
    found = []
    for name in modules:
        try:
            importlib.import_module(name)
            found.append(name)
        except ImportError:
            pass
    imported = time.perf_counter()
    result = asyncio.run(_measure_core({**job, "duration_s": 1.0}, {}, throughput=False))
    return {
        "modules": found,
        "import_s": imported - STARTED,
        "rss_after_load_mb": result["rss_after_load_mb"],
        "tensorflow_imported": "tensorflow" in sys.modules,
    }


JOBS = {
    "peak": job_peak,
    "export": job_export,
    "original": job_original,
    "core": job_core,
    "sweep": job_sweep,
    "batching": job_batching,
    "footprint": job_footprint,
}


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    result = JOBS[job["job"]](job)
    print(json.dumps({**result, **memory_mb()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
