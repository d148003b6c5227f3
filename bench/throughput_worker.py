"""One measurement of ``bench/throughput.py``, run in its own process so its import time and RSS are its own.

    python -m bench.throughput_worker JOB.json      # prints one JSON line with the results

Jobs: ``peak`` (fp32 numpy and int8 onnxruntime matmul), ``original`` (a transformers pipeline per message on a TF
DistilBERT), ``classifier`` (the bot's Classifier on a models.yaml entry), ``raw`` (the entry's ONNX graph alone on
pre-tokenised, length-sorted batches: the model's ceiling), ``raid`` (flood cache on vs off), ``sweep`` (Classifier
settings).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
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
    await asyncio.gather(*pending, return_exceptions=True)
    return {"offered": len(tasks), "completed": len(latencies), **percentiles(latencies, len(pending))}


async def closed_loop(call: Call, messages: Sequence[str], budget: float, chunk: int = 256) -> dict:
    """Single-message calls pushed as fast as they are answered (``chunk`` in flight), until done or ``budget`` s."""
    done = 0
    started = time.perf_counter()
    while done < len(messages) and time.perf_counter() - started < budget:
        part = messages[done : done + chunk]
        await asyncio.gather(*(call(text) for text in part))
        done += len(part)
    elapsed = time.perf_counter() - started
    return {"messages": done, "seconds": elapsed, "msgs_per_s": done / elapsed}


def _timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def job_peak(job: dict) -> dict:
    """fp32 GFLOP/s of numpy's matmul and int8 GOP/s of onnxruntime's MatMulInteger (u8 x s8), best of 5."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    size = job.get("size", 2048)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size), dtype=np.float32), rng.standard_normal((size, size), dtype=np.float32)
    a @ b  # warm-up: threads, page faults
    fp32 = 2 * size**3 / min(_timed(lambda: a @ b) for _ in range(5)) / 1e9
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])],
        "peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [size, size])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [size, size])],
        [helper.make_tensor("b", TensorProto.INT8, [size, size], rng.integers(-127, 127, size * size).tolist())],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = {"a": rng.integers(0, 255, (size, size), dtype=np.uint8)}
    session.run(None, feed)
    int8 = 2 * size**3 / min(_timed(lambda: session.run(None, feed)) for _ in range(5)) / 1e9
    return {"fp32_gflops": fp32, "int8_gops": int8, "size": size}


def job_build_original(job: dict) -> dict:
    """A TF DistilBERT-base classifier with random weights (the original models' architecture; speed only) and the
    shipped model's uncased WordPiece tokenizer (distilbert-base-uncased uses the same 30,522-token vocabulary)."""
    from transformers import DistilBertConfig, PreTrainedTokenizerFast, TFDistilBertForSequenceClassification

    labels = job["labels"]
    config = DistilBertConfig(
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
        problem_type="multi_label_classification",
    )
    model = TFDistilBertForSequenceClassification(config)
    model(model.dummy_inputs, training=False)
    model.save_pretrained(job["original_dir"])
    specials = {f"{kind}_token": f"[{kind.upper()}]" for kind in ("unk", "pad", "cls", "sep", "mask")}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=job["tokenizer_file"],
        model_max_length=512,
        model_input_names=["input_ids", "attention_mask"],  # DistilBERT takes no token_type_ids
        **specials,
    )
    tokenizer.save_pretrained(job["original_dir"])
    return {"parameters": int(model.count_params())}


def job_original(job: dict) -> dict:
    """The original project's inference: a TF text-classification pipeline, all scores, one call per message."""
    import concurrent.futures

    from transformers import pipeline

    imported = time.perf_counter()
    pipe = pipeline("text-classification", model=job["original_dir"], framework="tf", top_k=None, dtype=None)
    loaded = time.perf_counter()
    messages = job["messages"]
    pipe(messages[0])
    after_load = memory_mb()["rss_mb"]
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=1)  # the demo serves one request at a time

    async def run() -> dict:
        loop = asyncio.get_running_loop()

        async def one(text: str) -> None:
            await loop.run_in_executor(executor, pipe, text)

        result: dict[str, Any] = {"throughput": await closed_loop(one, messages, job["budget_s"], chunk=8)}
        for rate in job["rates"]:
            result[f"load_{rate:g}"] = await offered_load(
                one, messages, rate=rate, duration=job["duration_s"], seed=job["seed"]
            )
        return result

    results = asyncio.run(run())
    executor.shutdown(wait=False, cancel_futures=True)
    return {"import_s": imported - STARTED, "load_s": loaded - imported, "rss_after_load_mb": after_load, **results}


def _classifier(job: dict, settings: dict):
    from bot.core.classifier import Classifier
    from bot.core.registry import load_registry

    return Classifier(load_registry(job["models_yaml"]), **settings)


async def _measure_classifier(job: dict, settings: dict, *, rates: Sequence[float], throughput: bool = True) -> dict:
    classifier = _classifier(job, {"flood_size": 0, **settings})  # distinct-message figures: no flood cache
    model = job["model"]
    try:
        loading = time.perf_counter()
        await classifier.load(model)
        load_s = time.perf_counter() - loading
        messages = job["messages"]
        await classifier.classify(messages[:64], model)  # warm-up

        async def one(text: str) -> None:
            await classifier.classify([text], model)

        result: dict[str, Any] = {"load_s": load_s, "rss_after_load_mb": memory_mb()["rss_mb"], "settings": settings}
        if throughput:
            result["throughput"] = await closed_loop(one, messages, job["budget_s"])
        for rate in rates:
            load = await offered_load(one, messages, rate=rate, duration=job["duration_s"], seed=job["seed"])
            result[f"load_{rate:g}"] = load
        return result
    finally:
        await classifier.aclose()


def job_classifier(job: dict) -> dict:
    for name in ("bot.core.classifier", "bot.core.registry", "bot.core.backends.onnx"):  # the serving path's imports
        importlib.import_module(name)
    imported = time.perf_counter()
    result = asyncio.run(_measure_classifier(job, job.get("settings", {}), rates=job["rates"]))
    return {"import_s": imported - STARTED, **result, "tensorflow_imported": "tensorflow" in sys.modules}


def job_raw(job: dict) -> dict:
    """The served graph alone: pre-tokenised messages, length-sorted batches of 32, ``session.run`` timed only."""
    import numpy as np

    from bot.core.backends.base import load_backend, pad_rows
    from bot.core.registry import load_registry

    imported = time.perf_counter()
    backend = load_backend(load_registry(job["models_yaml"]).get(job["model"]))
    rows, _ = backend.encoder.encode(job["messages"])
    order = np.argsort([len(row) for row in rows], kind="stable")
    batches = [
        pad_rows([rows[i] for i in order[start : start + 32]], backend.pad_id) for start in range(0, len(rows), 32)
    ]
    feeds = [{"input_ids": ids, "attention_mask": mask} for ids, mask in batches]
    backend.session.run(None, feeds[0])
    best = min(
        _timed(lambda: [backend.session.run(None, feed) for feed in feeds]) for _ in range(job.get("repeats", 3))
    )
    return {
        "import_s": imported - STARTED,
        "throughput": {"messages": len(rows), "seconds": best, "msgs_per_s": len(rows) / best},
        "mean_tokens": float(np.mean([len(row) for row in rows])),
        "rss_after_load_mb": memory_mb()["rss_mb"],
    }


def job_raid(job: dict) -> dict:
    """A raid: ``count`` messages, ``copies`` share of them copies of ``distinct`` texts; flood cache off vs on."""
    import numpy as np

    rng = np.random.default_rng(job["seed"])
    pool = job["messages"]
    count, distinct, copies = job.get("count", 1000), job.get("distinct", 20), job.get("copies", 0.8)
    raid_texts = [pool[i] for i in rng.choice(len(pool), distinct, replace=False)]
    others = [pool[i] for i in rng.choice(len(pool), count, replace=count > len(pool))]
    messages = [raid_texts[i % distinct] if rng.random() < copies else others[i] for i in range(count)]

    async def run(flood_size: int) -> dict:
        classifier = _classifier(job, {"flood_size": flood_size})
        try:
            await classifier.load(job["model"])
            await classifier.classify(pool[-64:], job["model"])  # warm-up on texts outside the raid
            started = time.perf_counter()
            await asyncio.gather(*(classifier.classify([text], job["model"]) for text in messages))
            seconds = time.perf_counter() - started
            return {"msgs_per_s": count / seconds, "hit_rate": classifier.flood.hit_rate, "hits": classifier.flood.hits}
        finally:
            await classifier.aclose()

    off, on = asyncio.run(run(0)), asyncio.run(run(4096))
    return {"messages": count, "copies": copies, "distinct": distinct, "no_cache": off, "cache": on}


def job_sweep(job: dict) -> dict:
    """Classifier settings, each in a fresh Classifier (same process, model files already in the page cache)."""
    rows = []
    for settings in job["settings"]:
        rows.append(asyncio.run(_measure_classifier(job, settings, rates=job["rates"])))
    return {"sweep": rows}


JOBS = {
    "peak": job_peak,
    "build_original": job_build_original,
    "original": job_original,
    "classifier": job_classifier,
    "raw": job_raw,
    "raid": job_raid,
    "sweep": job_sweep,
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
